package mapping

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Line writes c as one line of a job file's mapping.columns, ready to paste:
// - { from: "Sales[Order ID]", to: order_id, type: int64 }
func (c Column) Line() string {
	return fmt.Sprintf("- { from: %s, to: %s, type: %s }", YAMLString(c.From), YAMLName(c.To), YAMLName(c.Type.String()))
}

// Block writes cols as a mapping: block, indented by indent spaces, with
// unmapped: error; each line ends with a newline.
func Block(cols []Column, indent int) string {
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	b.WriteString(pad + "mapping:\n" + pad + "  columns:\n")
	for _, c := range cols {
		b.WriteString(pad + "    " + c.Line() + "\n")
	}
	b.WriteString(pad + "  unmapped: error\n")
	return b.String()
}

// YAMLString quotes s as a YAML double-quoted scalar: Go's escapes (\n, \t,
// \", \\, \xNN, \uNNNN, \UNNNNNNNN) are all YAML escapes too.
func YAMLString(s string) string { return strconv.Quote(s) }

var plainNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// yamlReserved are the plain scalars a YAML reader may take for something
// other than a string.
var yamlReserved = map[string]bool{"null": true, "true": true, "false": true, "yes": true, "no": true, "on": true, "off": true, "y": true, "n": true}

// YAMLName writes a column name or type plain when YAML reads it back as
// that string, and quoted otherwise.
func YAMLName(s string) string {
	if plainNameRE.MatchString(s) && !yamlReserved[s] {
		return s
	}
	return YAMLString(s)
}
