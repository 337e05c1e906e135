// Package powerbi reads the results of DAX queries from Power BI: the
// executeQueries REST API (a client on azcore's pipeline, with Entra ID
// tokens, one shared rate limit, retries and redirects), the streaming
// decoder of its JSON responses, the mapping of their rows into typed Arrow
// batches (or the inference of their types), keyset paging past the
// service's limits, and the replay of a saved response. Connector opens
// them all as source.Sources; it is the one place that tells the kinds of
// source apart.
package powerbi

// rowReceiver receives the rows of a result table, one field at a time, as
// the response is decoded.
//
// key is the row key as a raw JSON string, quotes and escapes included (for
// example "Sales[OrderID]"); value is the raw JSON value: a string with its
// quotes, a number literal, true, false or null. Both slices are only valid
// during the call. EndRow closes the current row. An error from either method
// stops decoding and is returned by the decoder as it is.
type rowReceiver interface {
	Field(key, value []byte) error
	EndRow() error
}
