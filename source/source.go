// Package source reads the result of a DAX query: from the Power BI
// executeQueries REST API, or from a saved response file.
package source

// RowReceiver receives the rows of a result table, one field at a time, as
// the response is decoded.
//
// key is the row key as a raw JSON string, quotes and escapes included (for
// example "Sales[OrderID]"); value is the raw JSON value: a string with its
// quotes, a number literal, true, false or null. Both slices are only valid
// during the call. EndRow closes the current row. An error from either method
// stops decoding and is returned by the decoder as it is.
type RowReceiver interface {
	Field(key, value []byte) error
	EndRow() error
}
