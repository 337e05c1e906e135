package main

import (
	"bufio"
	"io"
	"strings"
	"unicode"
)

// writeTable writes rows under header in aligned columns two spaces apart:
// the columns right sets are right-aligned (numbers), the others
// left-aligned; no line has trailing spaces.
func writeTable(w io.Writer, header []string, rows [][]string, right []bool) {
	width := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for j, v := range r {
			width[j] = max(width[j], displayWidth(v))
		}
	}
	bw := bufio.NewWriter(w)
	line := func(r []string) {
		var b strings.Builder
		for j, v := range r {
			pad := strings.Repeat(" ", width[j]-displayWidth(v))
			if j > 0 {
				b.WriteString("  ")
			}
			if j < len(right) && right[j] {
				b.WriteString(pad + v)
			} else {
				b.WriteString(v + pad)
			}
		}
		bw.WriteString(strings.TrimRight(b.String(), " ") + "\n")
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	bw.Flush()
}

// displayWidth is the number of terminal columns s takes: two for East
// Asian wide characters and most emoji, none for combining marks, one for
// the others.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || r == 0x200D || r >= 0xFE00 && r <= 0xFE0F:
		case r >= 0x1100 && r <= 0x115F, r >= 0x2E80 && r <= 0xA4CF, r >= 0xAC00 && r <= 0xD7A3,
			r >= 0xF900 && r <= 0xFAFF, r >= 0xFE30 && r <= 0xFE4F, r >= 0xFF00 && r <= 0xFF60,
			r >= 0xFFE0 && r <= 0xFFE6, r >= 0x1F300 && r <= 0x1F64F, r >= 0x1F900 && r <= 0x1F9FF,
			r >= 0x20000 && r <= 0x3FFFD:
			n += 2
		default:
			n++
		}
	}
	return n
}
