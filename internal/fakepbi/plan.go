package fakepbi

import (
	"container/heap"
	"slices"
	"sort"
	"strings"
)

// relation is a bound table expression: the rows of one model table, as a
// stream of row indices, seen through a list of output columns. Every
// expression of the subset keeps a single base table, so a row of the result
// is always a row index of base.
type relation struct {
	base *Table
	cols []relCol
	src  rowSource
}

// relCol is an output column: base column c of the base table, with key
// Table[Name] when table is set and [Name] otherwise.
type relCol struct {
	table string
	name  string
	base  int
}

func (c relCol) key() string {
	if c.table != "" {
		return c.table + "[" + c.name + "]"
	}
	return "[" + c.name + "]"
}

// plan parses and binds query against tables.
func plan(tables []*Table, query string) (*relation, error) {
	ast, err := parseQuery(query)
	if err != nil {
		return nil, err
	}
	b := &binder{tables: tables}
	rel, err := b.table(ast.table)
	if err != nil {
		return nil, err
	}
	if len(ast.orderBy) > 0 {
		keys, err := b.sortKeys(rel, ast.orderBy)
		if err != nil {
			return nil, err
		}
		rel.src = ordered(rel.base, rel.src, keys)
	}
	return rel, nil
}

type binder struct {
	tables []*Table
}

func (b *binder) lookup(name string) *Table {
	for _, t := range b.tables {
		if strings.EqualFold(t.Name, name) {
			return t
		}
	}
	return nil
}

func (b *binder) table(e tableExpr) (*relation, error) {
	switch e := e.(type) {
	case *tableName:
		t := b.lookup(e.name)
		if t == nil {
			return nil, unresolvedName(e.at, e.name)
		}
		rel := &relation{base: t, src: &scanSource{t: t, lo: 0, hi: t.Rows, key: -1}}
		if t.SortedBy != "" {
			rel.src.(*scanSource).key = t.column(t.SortedBy)
		}
		for i, c := range t.Columns {
			rel.cols = append(rel.cols, relCol{table: t.Name, name: c.Name, base: i})
		}
		return rel, nil

	case *selectColumnsExpr:
		in, err := b.table(e.in)
		if err != nil {
			return nil, err
		}
		out := &relation{base: in.base, src: in.src}
		for i, ref := range e.cols {
			c, err := b.resolve(in, ref)
			if err != nil {
				return nil, err
			}
			for _, prev := range out.cols {
				if strings.EqualFold(prev.name, e.names[i]) {
					return nil, queryError(e.nameAt[i], "Function 'SELECTCOLUMNS' cannot add column [%s] since it already exists.", e.names[i])
				}
			}
			out.cols = append(out.cols, relCol{name: e.names[i], base: c})
		}
		return out, nil

	case *filterExpr:
		in, err := b.table(e.in)
		if err != nil {
			return nil, err
		}
		p, err := b.pred(in, e.pred)
		if err != nil {
			return nil, err
		}
		src := in.src
		if scan, ok := src.(*scanSource); ok && scan.key >= 0 {
			src, p = narrow(scan, p)
		}
		if p != nil {
			src = &filterSource{in: src, t: in.base, pred: p}
		}
		return &relation{base: in.base, cols: in.cols, src: src}, nil

	case *topnExpr:
		in, err := b.table(e.in)
		if err != nil {
			return nil, err
		}
		keys, err := b.sortKeys(in, e.keys)
		if err != nil {
			return nil, err
		}
		src := in.src
		if !satisfies(src.order(), keys) {
			if r := src.reversed(); r != nil && satisfies(r.order(), keys) {
				src = r
			}
		}
		return &relation{base: in.base, cols: in.cols, src: &topnSource{in: src, t: in.base, n: e.n, keys: keys}}, nil
	}
	panic("fakepbi: unknown table expression")
}

// resolve finds the base column a reference names in rel: T[Col] must name a
// column of rel that belongs to table T, [Col] any column of rel named Col.
func (b *binder) resolve(rel *relation, ref colRef) (int, error) {
	for _, c := range rel.cols {
		if strings.EqualFold(c.name, ref.col) && (!ref.qualified || c.table != "" && strings.EqualFold(c.table, ref.table)) {
			return c.base, nil
		}
	}
	if !ref.qualified {
		return 0, queryError(ref.at, "Cannot find name '[%s]'.", ref.col)
	}
	t := b.lookup(ref.table)
	if t == nil {
		return 0, queryError(ref.at, "Cannot find table '%s'.", ref.table)
	}
	return 0, queryError(ref.at, "Column '%s' in table '%s' cannot be found or may not be used in this expression.", ref.col, t.Name)
}

func (b *binder) sortKeys(rel *relation, items []orderItem) ([]sortKey, error) {
	keys := make([]sortKey, 0, len(items))
	for _, it := range items {
		c, err := b.resolve(rel, it.col)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sortKey{col: c, desc: it.desc, unique: rel.base.SortedBy != "" && c == rel.base.column(rel.base.SortedBy)})
	}
	return keys, nil
}

// boundPred is a bound FILTER condition.
type boundPred interface {
	eval(t *Table, row int) bool
}

type boundCmp struct {
	op   cmpOp
	l, r boundOperand
}

// boundOperand is base column col, or the literal lit when col < 0.
type boundOperand struct {
	col int
	lit cval
}

func (o boundOperand) value(t *Table, row int) cval {
	if o.col < 0 {
		return o.lit
	}
	return cell(t, row, o.col)
}

func (c *boundCmp) eval(t *Table, row int) bool {
	return c.op.apply(c.l.value(t, row), c.r.value(t, row))
}

type boundLogic struct {
	and  bool
	l, r boundPred
}

func (l *boundLogic) eval(t *Table, row int) bool {
	if l.and {
		return l.l.eval(t, row) && l.r.eval(t, row)
	}
	return l.l.eval(t, row) || l.r.eval(t, row)
}

func (b *binder) pred(rel *relation, e predExpr) (boundPred, error) {
	switch e := e.(type) {
	case *logicExpr:
		l, err := b.pred(rel, e.l)
		if err != nil {
			return nil, err
		}
		r, err := b.pred(rel, e.r)
		if err != nil {
			return nil, err
		}
		return &boundLogic{and: e.and, l: l, r: r}, nil
	case *cmpExpr:
		l, lt, err := b.operand(rel, e.l)
		if err != nil {
			return nil, err
		}
		r, rt, err := b.operand(rel, e.r)
		if err != nil {
			return nil, err
		}
		if lt != 0 && rt != 0 && typeGroup(lt) != typeGroup(rt) {
			return nil, queryError(e.at, "DAX comparison operations do not support comparing values of type %s with values of type %s. Consider using the VALUE or FORMAT function to convert one of the values.", lt, rt)
		}
		return &boundCmp{op: parseOp(e.op), l: l, r: r}, nil
	}
	panic("fakepbi: unknown predicate")
}

// operand binds a comparison operand and returns its type (0 for BLANK()).
func (b *binder) operand(rel *relation, o operand) (boundOperand, ColumnType, error) {
	if o.lit != nil {
		return boundOperand{col: -1, lit: o.lit.v}, o.lit.kind, nil
	}
	c, err := b.resolve(rel, *o.col)
	if err != nil {
		return boundOperand{}, 0, err
	}
	return boundOperand{col: c}, rel.base.Columns[c].Type, nil
}

// typeGroup puts the numeric types together: DAX compares them with each
// other.
func typeGroup(t ColumnType) ColumnType {
	switch t {
	case Int64, Double, Currency:
		return Double
	}
	return t
}

// narrow turns the conditions of p on the scan's key column into a smaller
// row range (binary search: the key is strictly increasing) and returns the
// conditions left to test row by row, or nil.
func narrow(scan *scanSource, p boundPred) (rowSource, boundPred) {
	var conj []boundPred
	var flatten func(boundPred)
	flatten = func(p boundPred) {
		if l, ok := p.(*boundLogic); ok && l.and {
			flatten(l.l)
			flatten(l.r)
			return
		}
		conj = append(conj, p)
	}
	flatten(p)
	s := *scan
	var rest boundPred
	for _, c := range conj {
		if !s.narrowBy(c) {
			if rest == nil {
				rest = c
			} else {
				rest = &boundLogic{and: true, l: rest, r: c}
			}
		}
	}
	return &s, rest
}

// narrowBy narrows the range by p when p compares the key with a non-blank
// literal, and reports whether it did.
func (s *scanSource) narrowBy(p boundPred) bool {
	c, ok := p.(*boundCmp)
	if !ok {
		return false
	}
	op, lit := c.op, c.r
	switch {
	case c.l.col == s.key && c.r.col < 0:
	case c.r.col == s.key && c.l.col < 0:
		op, lit = op.flip(), c.l
	default:
		return false
	}
	if lit.lit.k == kBlank || op == opNE {
		return false
	}
	// first returns the first row of the range whose key is after (or at,
	// when orEqual) the literal, given that keys increase.
	first := func(orEqual bool) int {
		return s.lo + sort.Search(s.hi-s.lo, func(i int) bool {
			c := compareVals(cell(s.t, s.lo+i, s.key), lit.lit)
			return c > 0 || orEqual && c == 0
		})
	}
	lo, hi := s.lo, s.hi
	switch op {
	case opGT:
		lo = first(false)
	case opGE:
		lo = first(true)
	case opLT:
		hi = first(true)
	case opLE:
		hi = first(false)
	case opEQ, opStrictEQ:
		lo, hi = first(true), first(false)
	}
	s.lo, s.hi = lo, max(lo, hi)
	return true
}

// sortKey orders rows by base column col; unique marks the table's SortedBy
// key, after which further keys cannot matter.
type sortKey struct {
	col    int
	desc   bool
	unique bool
}

// satisfies reports whether rows in order have are also in order want.
func satisfies(have, want []sortKey) bool {
	for i, w := range want {
		if i >= len(have) {
			return false
		}
		h := have[i]
		if h.col != w.col || h.desc != w.desc {
			return false
		}
		if h.unique {
			return true
		}
	}
	return true
}

// ordered returns src in the order of keys: src itself or src reversed when
// it already is (streaming), else a sort of its row indices.
func ordered(t *Table, src rowSource, keys []sortKey) rowSource {
	if satisfies(src.order(), keys) {
		return src
	}
	if r := src.reversed(); r != nil && satisfies(r.order(), keys) {
		return r
	}
	return &sortSource{in: src, t: t, keys: keys}
}

// keysOf reads the sort keys of row.
func keysOf(t *Table, row int, keys []sortKey, dst []cval) []cval {
	dst = dst[:0]
	for _, k := range keys {
		dst = append(dst, cell(t, row, k.col))
	}
	return dst
}

// compareKeys returns a negative number when key values a come before b.
func compareKeys(a, b []cval, keys []sortKey) int {
	for i, k := range keys {
		c := sortCompare(a[i], b[i])
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// rowSource is a re-readable stream of row indices.
type rowSource interface {
	// open starts a pass over the rows.
	open() rowIter
	// order is the order rows come in (nil: unknown).
	order() []sortKey
	// reversed returns the same rows in reverse order, or nil when that
	// is not cheap.
	reversed() rowSource
}

// rowIter is one pass over a rowSource.
type rowIter interface {
	next() (row int, ok bool)
}

// scanSource reads rows lo..hi-1 of t, backwards when desc. key is the
// index of t's SortedBy column, or -1.
type scanSource struct {
	t      *Table
	lo, hi int
	desc   bool
	key    int
}

func (s *scanSource) open() rowIter {
	if s.desc {
		return &scanIter{i: s.hi - 1, end: s.lo - 1, step: -1}
	}
	return &scanIter{i: s.lo, end: s.hi, step: 1}
}

func (s *scanSource) order() []sortKey {
	if s.key < 0 {
		return nil
	}
	return []sortKey{{col: s.key, desc: s.desc, unique: true}}
}

func (s *scanSource) reversed() rowSource {
	r := *s
	r.desc = !r.desc
	return &r
}

type scanIter struct{ i, end, step int }

func (it *scanIter) next() (int, bool) {
	if it.i == it.end {
		return 0, false
	}
	i := it.i
	it.i += it.step
	return i, true
}

// filterSource keeps the rows of in for which pred holds.
type filterSource struct {
	in   rowSource
	t    *Table
	pred boundPred
}

func (f *filterSource) open() rowIter    { return &filterIter{in: f.in.open(), f: f} }
func (f *filterSource) order() []sortKey { return f.in.order() }
func (f *filterSource) reversed() rowSource {
	r := f.in.reversed()
	if r == nil {
		return nil
	}
	return &filterSource{in: r, t: f.t, pred: f.pred}
}

type filterIter struct {
	in rowIter
	f  *filterSource
}

func (it *filterIter) next() (int, bool) {
	for {
		row, ok := it.in.next()
		if !ok || it.f.pred.eval(it.f.t, row) {
			return row, ok
		}
	}
}

// topnSource keeps the first n rows of in in the order of keys, plus every
// row tied with the n-th on all keys, as DAX's TOPN does. Rows come in the
// order of in. When in is already in key order this is one streaming pass
// that stops after the ties; otherwise a first pass finds the n-th key with
// a heap of n rows and a second pass keeps the rows not after it.
type topnSource struct {
	in   rowSource
	t    *Table
	n    int64
	keys []sortKey
}

func (s *topnSource) order() []sortKey { return s.in.order() }

// reversed is valid because the set of rows TOPN keeps does not depend on
// the order it reads them in.
func (s *topnSource) reversed() rowSource {
	r := s.in.reversed()
	if r == nil {
		return nil
	}
	return &topnSource{in: r, t: s.t, n: s.n, keys: s.keys}
}

func (s *topnSource) open() rowIter {
	if s.n <= 0 {
		return &scanIter{}
	}
	if satisfies(s.in.order(), s.keys) {
		return &topnStreamIter{in: s.in.open(), s: s}
	}
	h := &keyHeap{keys: s.keys}
	it := s.in.open()
	var buf []cval
	for {
		row, ok := it.next()
		if !ok {
			break
		}
		buf = keysOf(s.t, row, s.keys, buf)
		if int64(h.Len()) < s.n {
			heap.Push(h, heapEntry{row: row, vals: slices.Clone(buf)})
		} else if compareKeys(buf, h.items[0].vals, s.keys) < 0 {
			e := &h.items[0]
			e.row = row
			e.vals = append(e.vals[:0], buf...)
			heap.Fix(h, 0)
		}
	}
	if int64(h.Len()) < s.n {
		return s.in.open()
	}
	return &topnThresholdIter{in: s.in.open(), s: s, limit: h.items[0].vals}
}

type topnStreamIter struct {
	in    rowIter
	s     *topnSource
	count int64
	nth   []cval
	buf   []cval
	done  bool
}

func (it *topnStreamIter) next() (int, bool) {
	if it.done {
		return 0, false
	}
	row, ok := it.in.next()
	if !ok {
		it.done = true
		return 0, false
	}
	it.count++
	if it.count < it.s.n {
		return row, true
	}
	if len(it.s.keys) == 0 && it.count > it.s.n {
		// Without order keys no row ties with the n-th.
		it.done = true
		return 0, false
	}
	if it.count == it.s.n {
		it.nth = keysOf(it.s.t, row, it.s.keys, nil)
		return row, true
	}
	it.buf = keysOf(it.s.t, row, it.s.keys, it.buf)
	if compareKeys(it.buf, it.nth, it.s.keys) == 0 {
		return row, true
	}
	it.done = true
	return 0, false
}

type topnThresholdIter struct {
	in    rowIter
	s     *topnSource
	limit []cval
	buf   []cval
}

func (it *topnThresholdIter) next() (int, bool) {
	for {
		row, ok := it.in.next()
		if !ok {
			return 0, false
		}
		it.buf = keysOf(it.s.t, row, it.s.keys, it.buf)
		if compareKeys(it.buf, it.limit, it.s.keys) <= 0 {
			return row, true
		}
	}
}

type heapEntry struct {
	row  int
	vals []cval
}

// keyHeap is a max-heap in key order: its top is the row that comes last,
// the first to give way to a better one.
type keyHeap struct {
	keys  []sortKey
	items []heapEntry
}

func (h *keyHeap) Len() int { return len(h.items) }
func (h *keyHeap) Less(i, j int) bool {
	return compareKeys(h.items[i].vals, h.items[j].vals, h.keys) > 0
}
func (h *keyHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *keyHeap) Push(x any)    { h.items = append(h.items, x.(heapEntry)) }
func (h *keyHeap) Pop() any {
	e := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return e
}

// sortSource sorts the row indices of in by keys, stably. It holds one int
// per row: meant for small tables (declare Table.SortedBy for big ones).
type sortSource struct {
	in   rowSource
	t    *Table
	keys []sortKey
}

func (s *sortSource) order() []sortKey    { return s.keys }
func (s *sortSource) reversed() rowSource { return nil }

func (s *sortSource) open() rowIter {
	var rows []int
	it := s.in.open()
	for {
		row, ok := it.next()
		if !ok {
			break
		}
		rows = append(rows, row)
	}
	var a, b []cval
	slices.SortStableFunc(rows, func(x, y int) int {
		a = keysOf(s.t, x, s.keys, a)
		b = keysOf(s.t, y, s.keys, b)
		return compareKeys(a, b, s.keys)
	})
	return &sliceIter{rows: rows}
}

type sliceIter struct{ rows []int }

func (it *sliceIter) next() (int, bool) {
	if len(it.rows) == 0 {
		return 0, false
	}
	row := it.rows[0]
	it.rows = it.rows[1:]
	return row, true
}
