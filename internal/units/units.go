// Package units writes quantities for people: one byte unit everywhere
// pbicopy shows a size (the progress line, the summary, messages).
package units

import (
	"fmt"
	"strconv"
)

// Bytes writes n bytes in IEC units with one decimal: 512 B, 1.5 KiB,
// 240.4 KiB, 14.3 MiB, 2.0 GiB. The unit is the largest whose value,
// rounded, is at least 1.
func Bytes(n int64) string {
	const unit = 1024
	if n > -unit && n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	exp := -1
	for (v >= unit-0.05 || v <= -unit+0.05) && exp < len(prefixes)-1 {
		// A value that would round to 1024.0 is written 1.0 of the next
		// unit.
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, prefixes[exp])
}

const prefixes = "KMGTPE"
