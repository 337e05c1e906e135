package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// TempMaxAge is the age past which a temporary file whose writer cannot be
// checked (written on another machine, in another container, before a
// reboot, or by a version that did not record its process) is taken for
// the leftover of a killed run and removed.
const TempMaxAge = 24 * time.Hour

// Temporary files are named .<target>.tmp-<pid>-<host>-<random>: pid is
// the writing process, host a digest of what makes that pid meaningful
// (the boot, the pid namespace, the host name), so that the next run can
// tell whether the writer is gone.
var (
	tempRE    = regexp.MustCompile(`^\..+\.tmp-([0-9]+)-([0-9a-f]{8})-[0-9a-z]+$`)
	oldTempRE = regexp.MustCompile(`^\..+\.tmp-[0-9a-z]+$`) // before the pid was recorded

	hostOnce sync.Once
	hostKey  string

	sweptDirs sync.Map // directories swept by this process
)

// processHost is the digest of the boot id, the pid namespace and the host
// name of this process: two processes with the same digest see the same
// process ids.
func processHost() string {
	hostOnce.Do(func() {
		h := sha256.New()
		boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
		ns, _ := os.Readlink("/proc/self/ns/pid")
		host, _ := os.Hostname()
		h.Write(boot)
		h.Write([]byte{0})
		h.Write([]byte(ns))
		h.Write([]byte{0})
		h.Write([]byte(host))
		hostKey = hex.EncodeToString(h.Sum(nil))[:8]
	})
	return hostKey
}

// tempPrefix is the start of the name of a temporary file for the file
// name in dir, up to its random part.
func tempPrefix(dir, name string) string {
	// Keep the temporary name within the 255-byte limit of most file systems.
	if len(name) > 200 {
		name = name[:200]
	}
	return filepath.Join(dir, "."+name+".tmp-"+strconv.Itoa(os.Getpid())+"-"+processHost()+"-")
}

// sweepTemps removes, once per process and directory, the temporary files
// that killed runs left in dir (a SIGKILL leaves them: nothing can clean
// up). A temporary file is removed when the process that wrote it is gone
// (same boot, pid namespace and host, and no process has its pid), or when
// it was last modified more than TempMaxAge ago. The temporary files of a
// run in progress are kept. Failures are ignored: a leftover costs only
// space, and the next run tries again.
func sweepTemps(dir string) {
	if _, done := sweptDirs.LoadOrStore(dir, true); done {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	me, host := os.Getpid(), processHost()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		stale := false
		switch m := tempRE.FindStringSubmatch(name); {
		case m != nil:
			pid, err := strconv.Atoi(m[1])
			if err == nil && m[2] == host && pid != me && processGone(pid) {
				stale = true
				break
			}
			stale = olderThan(e, TempMaxAge)
		case oldTempRE.MatchString(name):
			stale = olderThan(e, TempMaxAge)
		}
		if stale {
			_ = os.Remove(filepath.Join(dir, name)) // see above: failures are ignored
		}
	}
}

func olderThan(e fs.DirEntry, age time.Duration) bool {
	fi, err := e.Info()
	return err == nil && time.Since(fi.ModTime()) > age
}
