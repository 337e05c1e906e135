// Package azureblob publishes file outputs into Azure Blob Storage: a
// Container is a sink.Folder whose files are block blobs, uploaded as
// staged blocks (each with its CRC64) and published by one commit of the
// block list; Storage implements sink.Storage, building the Entra ID
// credential an account asks for.
package azureblob
