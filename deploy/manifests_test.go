// Package deploy_test checks the Kubernetes manifests of deploy/ as they
// ship: each document decodes strictly into its Kubernetes API type, the
// workloads carry the settings docs/operations.md#kubernetes explains, and
// every job file they mount is valid for pbicopy. It imports k8s.io/api
// and sigs.k8s.io/yaml, which only tests use.
package deploy_test

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/pipeline"
	"github.com/pbicopy/pbicopy/sink"
)

// serviceRate is the service's limit of executeQueries requests a minute
// per identity, which the shards of one backfill share.
const serviceRate = 120

// manifests are the objects of deploy/*.yaml, by kind and name.
type manifests struct {
	jobs       map[string]*batchv1.Job
	cronJobs   map[string]*batchv1.CronJob
	configMaps map[string]*corev1.ConfigMap
	accounts   map[string]*corev1.ServiceAccount
}

// documents splits a YAML stream on its --- separator lines; documents
// holding only comments are left out.
func documents(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		for _, line := range strings.Split(d, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, []byte(d))
				break
			}
		}
	}
	return docs
}

// decodeObject decodes one document strictly (an unknown or duplicated
// field is an error) into the API type its apiVersion and kind name.
func decodeObject(m *manifests, doc []byte) (string, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return "", err
	}
	var obj interface{ GetName() string }
	switch tm.APIVersion + " " + tm.Kind {
	case "batch/v1 Job":
		obj = &batchv1.Job{}
	case "batch/v1 CronJob":
		obj = &batchv1.CronJob{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	default:
		return "", fmt.Errorf("apiVersion %q kind %q: not a kind this test knows", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return "", err
	}
	name := obj.GetName()
	if name == "" {
		return "", fmt.Errorf("%s without a name", tm.Kind)
	}
	var dup bool
	switch o := obj.(type) {
	case *batchv1.Job:
		_, dup = m.jobs[name]
		m.jobs[name] = o
	case *batchv1.CronJob:
		_, dup = m.cronJobs[name]
		m.cronJobs[name] = o
	case *corev1.ConfigMap:
		_, dup = m.configMaps[name]
		m.configMaps[name] = o
	case *corev1.ServiceAccount:
		_, dup = m.accounts[name]
		m.accounts[name] = o
	}
	if dup {
		return "", fmt.Errorf("a second %s named %s", tm.Kind, name)
	}
	return tm.Kind + "/" + name, nil
}

// loadManifests decodes every document of deploy/*.yaml.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{jobs: map[string]*batchv1.Job{}, cronJobs: map[string]*batchv1.CronJob{},
		configMaps: map[string]*corev1.ConfigMap{}, accounts: map[string]*corev1.ServiceAccount{}}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := documents(data)
		if len(docs) == 0 {
			t.Errorf("%s: no document", f)
		}
		for i, doc := range docs {
			if _, err := decodeObject(m, doc); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// workload is a pod template and the Job spec around it.
type workload struct {
	name string
	job  *batchv1.JobSpec
	pod  *corev1.PodSpec
	meta map[string]string // the pod template's labels
}

func (m *manifests) workloads() []workload {
	var ws []workload
	for name, j := range m.jobs {
		ws = append(ws, workload{"Job/" + name, &j.Spec, &j.Spec.Template.Spec, j.Spec.Template.Labels})
	}
	for name, c := range m.cronJobs {
		js := &c.Spec.JobTemplate.Spec
		ws = append(ws, workload{"CronJob/" + name, js, &js.Template.Spec, js.Template.Labels})
	}
	slices.SortFunc(ws, func(a, b workload) int { return strings.Compare(a.name, b.name) })
	return ws
}

// TestManifestsDecodeStrictly: every document of every manifest decodes
// into its API type with no unknown field, and the set is what the docs
// describe. The decoder must refuse a misspelt field, or the test proves
// nothing.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if len(m.jobs) != 1 || len(m.cronJobs) != 1 || len(m.configMaps) != 1 || len(m.accounts) != 1 {
		t.Errorf("%d Jobs, %d CronJobs, %d ConfigMaps, %d ServiceAccounts; want one of each", len(m.jobs), len(m.cronJobs), len(m.configMaps), len(m.accounts))
	}
	for _, bad := range []string{
		"apiVersion: batch/v1\nkind: Job\nmetadata: { name: x }\nspec:\n  activeDeadlineSecond: 10\n",
		"apiVersion: batch/v1\nkind: Job\nmetadata: { name: x }\nspec:\n  template:\n    spec:\n      containers: [{ name: a, image: b, arg: [run] }]\n",
		"apiVersion: batch/v1\nkind: Job\nmetadata: { name: x }\nspec:\n  completions: 1\n  completions: 2\n",
		"apiVersion: batch/v1\nkind: Job\nmetadata: { name: x }\nspec:\n  completions: four\n",
		"apiVersion: v1\nkind: Deployment\nmetadata: { name: x }\n",
	} {
		m := &manifests{jobs: map[string]*batchv1.Job{}, cronJobs: map[string]*batchv1.CronJob{},
			configMaps: map[string]*corev1.ConfigMap{}, accounts: map[string]*corev1.ServiceAccount{}}
		if _, err := decodeObject(m, []byte(bad)); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
	if n := len(documents([]byte("# c\n---\na: 1\n---\n# only a comment\n---\nb: 2\n"))); n != 2 {
		t.Errorf("documents: %d, want 2", n)
	}
}

// exitAction is what a Job's podFailurePolicy does with a container's exit
// code: the action of the first rule that matches it, "" for none (the
// default: counted against the backoff limit).
func exitAction(p *batchv1.PodFailurePolicy, container string, code int32) batchv1.PodFailurePolicyAction {
	for _, r := range p.Rules {
		e := r.OnExitCodes
		if e == nil || (e.ContainerName != nil && *e.ContainerName != container) {
			continue
		}
		in := slices.Contains(e.Values, code)
		if (e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
			return r.Action
		}
	}
	return ""
}

// TestWorkloadSettings checks, for the CronJob and the Indexed Job, every
// setting docs/operations.md#kubernetes explains.
func TestWorkloadSettings(t *testing.T) {
	m := loadManifests(t)
	for _, w := range m.workloads() {
		t.Run(w.name, func(t *testing.T) {
			checkRun(t, w.job)
			checkRestricted(t, w.pod)
			checkIdentity(t, m, w)
			checkMounts(t, m, w.pod)
			if len(w.pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(w.pod.Containers))
			}
			c := w.pod.Containers[0]
			if len(c.Command) != 0 {
				t.Errorf("command %q: the image has no shell; give args to its entrypoint", c.Command)
			}
			for _, a := range c.Args {
				if strings.Contains(a, "$") {
					t.Errorf("argument %q: nothing expands it without a shell (the Kubernetes form is $(VAR))", a)
				}
			}
			if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Error("no memory request or limit")
			}
		})
	}
}

// checkRun: a deadline, a time to live, and a podFailurePolicy that fails
// the Job at once on exit 2 and retries exit 1.
func checkRun(t *testing.T, js *batchv1.JobSpec) {
	t.Helper()
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 {
		t.Error("no activeDeadlineSeconds")
	}
	if js.TTLSecondsAfterFinished == nil || *js.TTLSecondsAfterFinished <= 0 {
		t.Error("no ttlSecondsAfterFinished")
	}
	if js.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q: podFailurePolicy needs Never", js.Template.Spec.RestartPolicy)
	}
	if g := js.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= pipeline.CommitGrace {
		t.Errorf("terminationGracePeriodSeconds: SIGKILL may cut a partition's commit phase, which may take %s", pipeline.CommitGrace)
	}
	p := js.PodFailurePolicy
	if p == nil {
		t.Fatal("no podFailurePolicy")
	}
	if len(js.Template.Spec.Containers) == 0 {
		t.Fatal("no container")
	}
	name := js.Template.Spec.Containers[0].Name
	if a := exitAction(p, name, 2); a != batchv1.PodFailurePolicyActionFailJob {
		t.Errorf("exit 2 (invalid job): action %q, want FailJob", a)
	}
	if a := exitAction(p, name, 1); a != batchv1.PodFailurePolicyActionCount {
		t.Errorf("exit 1 (run-time failure): action %q, want Count (retried)", a)
	}
	limit := js.BackoffLimit
	if js.BackoffLimitPerIndex != nil {
		limit = js.BackoffLimitPerIndex
	}
	if limit == nil || *limit < 1 {
		t.Error("exit 1 is never retried: give backoffLimit (or backoffLimitPerIndex) 1 or more")
	}
}

// checkRestricted checks the pod against the restricted Pod Security
// Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// and a read-only root filesystem.
func checkRestricted(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("host namespaces")
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if len(psc.Sysctls) > 0 {
		t.Error("sysctls")
	}
	if psc.SELinuxOptions != nil && psc.SELinuxOptions.Type != "" {
		t.Error("an SELinux type")
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s: hostPath", v.Name)
		}
		if v.ConfigMap == nil && v.EmptyDir == nil && v.Projected == nil && v.Secret == nil && v.DownwardAPI == nil &&
			v.PersistentVolumeClaim == nil && v.Ephemeral == nil && v.CSI == nil {
			t.Errorf("volume %s: a type the restricted level refuses", v.Name)
		}
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s: no securityContext", c.Name)
			continue
		}
		nonRoot := psc.RunAsNonRoot
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("container %s: runAsNonRoot is not true", c.Name)
		}
		for _, uid := range []*int64{psc.RunAsUser, sc.RunAsUser} {
			if uid != nil && *uid == 0 {
				t.Errorf("container %s: runAsUser 0", c.Name)
			}
		}
		seccomp := psc.SeccompProfile
		if sc.SeccompProfile != nil {
			seccomp = sc.SeccompProfile
		}
		if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
			t.Errorf("container %s: seccompProfile is not RuntimeDefault (or Localhost)", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s: privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s: capabilities do not drop ALL", c.Name)
		} else if len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			t.Errorf("container %s: procMount", c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("container %s: hostPort", c.Name)
			}
		}
	}
}

// checkIdentity: the pod runs as a shipped ServiceAccount federated by
// Azure Workload Identity, and carries the label the webhook acts on.
func checkIdentity(t *testing.T, m *manifests, w workload) {
	t.Helper()
	if w.meta["azure.workload.identity/use"] != "true" {
		t.Error(`the pod template lacks the label azure.workload.identity/use: "true"`)
	}
	sa, ok := m.accounts[w.pod.ServiceAccountName]
	if !ok {
		t.Fatalf("serviceAccountName %q: not shipped", w.pod.ServiceAccountName)
	}
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, a := range []string{"azure.workload.identity/client-id", "azure.workload.identity/tenant-id"} {
		if !guid.MatchString(sa.Annotations[a]) {
			t.Errorf("ServiceAccount %s: annotation %s = %q, want a GUID", sa.Name, a, sa.Annotations[a])
		}
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s mounts a Kubernetes API token pbicopy never uses", sa.Name)
	}
}

// checkMounts: every mount has its volume, and every ConfigMap volume is a
// shipped ConfigMap.
func checkMounts(t *testing.T, m *manifests, pod *corev1.PodSpec) {
	t.Helper()
	for _, c := range pod.Containers {
		for _, vm := range c.VolumeMounts {
			i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
			if i < 0 {
				t.Errorf("mount %s: no such volume", vm.Name)
				continue
			}
			if cm := pod.Volumes[i].ConfigMap; cm != nil {
				if _, ok := m.configMaps[cm.Name]; !ok {
					t.Errorf("volume %s: ConfigMap %s is not shipped", vm.Name, cm.Name)
				}
				if !vm.ReadOnly {
					t.Errorf("mount %s of job files is not readOnly", vm.Name)
				}
			}
		}
	}
}

// mountedJob is a job file a workload mounts and names in its args.
type mountedJob struct {
	path string // in the container, e.g. /jobs/sales-daily.yaml
	text []byte
}

// mountedJobs returns the job files the container's args name: a file of
// a mounted ConfigMap, or every .yaml of the ConfigMap for its folder.
func mountedJobs(t *testing.T, m *manifests, pod *corev1.PodSpec) []mountedJob {
	t.Helper()
	c := pod.Containers[0]
	var out []mountedJob
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "/") {
			continue
		}
		found := false
		for _, vm := range c.VolumeMounts {
			i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
			if i < 0 || pod.Volumes[i].ConfigMap == nil {
				continue
			}
			cm := m.configMaps[pod.Volumes[i].ConfigMap.Name]
			if cm == nil {
				continue
			}
			switch {
			case a == vm.MountPath:
				for key, text := range cm.Data {
					if strings.HasSuffix(key, ".yaml") {
						out = append(out, mountedJob{path.Join(vm.MountPath, key), []byte(text)})
						found = true
					}
				}
			case path.Dir(a) == vm.MountPath:
				if text, ok := cm.Data[path.Base(a)]; ok {
					out = append(out, mountedJob{a, []byte(text)})
					found = true
				}
			}
		}
		if !found {
			t.Errorf("argument %s: no job file of a mounted ConfigMap", a)
		}
	}
	slices.SortFunc(out, func(a, b mountedJob) int { return strings.Compare(a.path, b.path) })
	return out
}

// webhookEnv is what the Azure Workload Identity webhook sets in a pod of
// the pbicopy ServiceAccount.
var webhookEnv = map[string]string{
	"AZURE_CLIENT_ID":            "00000000-0000-0000-0000-000000000000",
	"AZURE_TENANT_ID":            "00000000-0000-0000-0000-000000000000",
	"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
	"AZURE_AUTHORITY_HOST":       "https://login.microsoftonline.com/",
}

// podEnv is the environment the container gets: its own env values (a
// value from a Secret counts as set) and the webhook's.
func podEnv(c corev1.Container) func(string) (string, bool) {
	env := map[string]string{}
	for k, v := range webhookEnv {
		env[k] = v
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "from-" + e.Name
		}
	}
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// TestMountedJobFilesAreValid loads every job file the workloads run as
// pbicopy does in the pod, with the container's environment: no problem
// at all, not even a warning. Then as `pbicopy validate --skip-env` does on
// a laptop, with no variable set: no error either.
func TestMountedJobFilesAreValid(t *testing.T) {
	m := loadManifests(t)
	for _, w := range m.workloads() {
		jobs := mountedJobs(t, m, w.pod)
		if len(jobs) == 0 {
			t.Errorf("%s runs no job file", w.name)
		}
		for _, mj := range jobs {
			t.Run(w.name+mj.path, func(t *testing.T) {
				job, problems, err := jobfile.Loader{LookupEnv: podEnv(w.pod.Containers[0])}.Load(mj.path, mj.text)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range problems {
					t.Errorf("in the pod: %s", p)
				}
				if _, err := job.Render(nil, true); err != nil {
					t.Errorf("render: %v", err)
				}
				unset := func(string) (string, bool) { return "", false }
				_, problems, err = jobfile.Loader{LookupEnv: unset, SkipEnv: true}.Load(mj.path, mj.text)
				if err != nil {
					t.Fatalf("--skip-env: %v", err)
				}
				for _, p := range problems {
					if p.Severity != jobfile.SeverityNote {
						t.Errorf("--skip-env: %s", p)
					}
				}
				checkJobOnAzure(t, job)
			})
		}
	}
}

// checkJobOnAzure: the job signs in with the pod's workload identity and
// keeps its outputs and its state on Blob Storage, never on the pod's disk.
func checkJobOnAzure(t *testing.T, job *jobfile.Job) {
	t.Helper()
	if job.Source.PowerBI == nil || job.Source.PowerBI.Auth.Method != "workloadIdentity" {
		t.Error("source.powerbi.auth.method is not workloadIdentity")
	}
	if job.Storage == nil || (job.Storage.Auth != nil && job.Storage.Auth.Method != "workloadIdentity") ||
		job.Storage.ConnectionString != "" || job.Storage.SASToken != "" || job.Storage.AccountKey != "" {
		t.Error("storage: not the workload identity")
	}
	for i, s := range job.Sinks {
		var p string
		switch {
		case s.Parquet != nil:
			p = s.Parquet.Path
		case s.CSV != nil:
			p = s.CSV.Path
		}
		if !sink.IsBlobPath(p) {
			t.Errorf("sinks[%d]: %q is not on Blob Storage", i, p)
		}
	}
	if job.State == nil || !sink.IsBlobPath(job.State.Path) {
		t.Error("state.path is not on Blob Storage: --resume would lose it with the pod")
	}
}

// flagValue returns the value of the flag name in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestIndexedJobShards: the Indexed Job runs one shard per completion
// (--shard auto/N with N its completions), all at once, sharing the
// service's limit (--rate x parallelism <= 120), resuming after a lost
// pod; the CronJob never overlaps itself and runs in a named time zone
// that is also the pod's, so that "yesterday" is the schedule's.
func TestIndexedJobShards(t *testing.T) {
	m := loadManifests(t)
	for name, j := range m.jobs {
		s := j.Spec
		args := s.Template.Spec.Containers[0].Args
		if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
			t.Errorf("Job %s: completionMode is not Indexed", name)
		}
		shard, ok := flagValue(args, "--shard")
		n, err := strconv.Atoi(strings.TrimPrefix(shard, "auto/"))
		if !ok || !strings.HasPrefix(shard, "auto/") || err != nil {
			t.Fatalf("Job %s: --shard %q, want auto/N", name, shard)
		}
		if s.Completions == nil || int(*s.Completions) != n || s.Parallelism == nil || int(*s.Parallelism) != n {
			t.Errorf("Job %s: --shard auto/%d needs completions and parallelism %d", name, n, n)
		}
		rate, _ := flagValue(args, "--rate")
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil || r*float64(n) > serviceRate {
			t.Errorf("Job %s: --rate %q x %d shards: more than %d a minute, or no --rate", name, rate, n, serviceRate)
		}
		if !slices.Contains(args, "--resume") {
			t.Errorf("Job %s: no --resume: a restarted shard would run its partitions again", name)
		}
		_, from := flagValue(args, "--from")
		_, to := flagValue(args, "--to")
		if !from || !to || args[0] != "run" {
			t.Errorf("Job %s: args %q, want run with --from and --to", name, args)
		}
	}
	for name, c := range m.cronJobs {
		if c.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("CronJob %s: concurrencyPolicy %q, want Forbid", name, c.Spec.ConcurrencyPolicy)
		}
		if c.Spec.TimeZone == nil {
			t.Fatalf("CronJob %s: no timeZone", name)
		}
		if _, err := time.LoadLocation(*c.Spec.TimeZone); err != nil {
			t.Errorf("CronJob %s: timeZone: %v", name, err)
		}
		tz, _ := podEnv(c.Spec.JobTemplate.Spec.Template.Spec.Containers[0])("TZ")
		if tz != *c.Spec.TimeZone {
			t.Errorf("CronJob %s: the pod's TZ %q is not the schedule's %q", name, tz, *c.Spec.TimeZone)
		}
		if d := c.Spec.JobTemplate.Spec.ActiveDeadlineSeconds; d != nil && *d >= 24*3600 {
			t.Errorf("CronJob %s: a run may last into the next night's (activeDeadlineSeconds %d)", name, *d)
		}
		if v, ok := flagValue(c.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args, "--metrics-push"); ok && v != "" {
			if inst, ok := flagValue(c.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args, "--metrics-instance"); !ok || inst == "" {
				t.Errorf("CronJob %s: --metrics-push without a fixed --metrics-instance: every pod would push a group of its own", name)
			}
		}
	}
}

// TestDockerIgnore: the build context leaves out what the image does not
// need, and keeps what the build does.
func TestDockerIgnore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, p := range []string{".git", ".ci", "**/node_modules"} {
		if !slices.Contains(patterns, p) {
			t.Errorf(".dockerignore does not leave out %s", p)
		}
	}
	for _, p := range patterns {
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "jobs", "jobs/demo.yaml", "internal", "sink", "source"} {
			if ok, _ := filepath.Match(strings.TrimPrefix(p, "**/"), needed); ok || p == needed {
				t.Errorf(".dockerignore pattern %s leaves out %s, which the build needs", p, needed)
			}
		}
	}
}
