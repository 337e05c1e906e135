// Package sinktest holds helpers for tests of the sinks and of the code that
// drives them: readers that turn Parquet and CSV files back into comparable
// rows, the facts of a Parquet footer, and a builder of Arrow batches from
// Go values.
//
// Rows are [][]any holding values in one normalised form, whatever read them:
//
//	nil                          a null
//	string                       utf8
//	int64                        int64
//	float64                      float64
//	bool                         bool
//	"12.3400"                    decimal128(P,S): the value at scale S (DecimalString)
//	"2024-02-29"                 date32 (DateLayout)
//	"2024-03-31T23:59:59.997"    timestamp[us] without a zone (TimestampLayout)
//
// The same form is accepted by NewBatch, so the rows a test writes are the
// rows it expects to read back.
//
// Integration tests skip through SkipOrFail, which CI turns into failures.
// StartAzurite gives the blob tests of a package one shared Azurite (the
// Azure Storage emulator, in memory on a free port); NewContainer, ReadBlob
// and the other blob helpers give each test a container of its own and
// read back what it published.
package sinktest
