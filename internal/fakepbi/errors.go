package fakepbi

import (
	"fmt"
	"strconv"
)

// analysisServicesErrorCode is the AnalysisServicesErrorCode the service
// reports with DAX errors.
const analysisServicesErrorCode = "3239575574"

// QueryError is a DAX error: the query cannot be parsed, names a table or
// column that does not exist, or compares values of incompatible types. The
// service answers it with HTTP 400 and a DatasetExecuteQueriesError body
// whose DetailsMessage is Error().
type QueryError struct {
	Line, Column int // 1-based position in the query text
	Message      string
}

// Error returns the text the service puts in the DetailsMessage detail, such
// as "Query (1, 10) Failed to resolve name 'Salez'. It is not a valid table,
// variable, or function name."
func (e *QueryError) Error() string {
	return "Query (" + strconv.Itoa(e.Line) + ", " + strconv.Itoa(e.Column) + ") " + e.Message
}

func queryError(at pos, format string, args ...any) *QueryError {
	return &QueryError{Line: at.line, Column: at.col, Message: fmt.Sprintf(format, args...)}
}

func syntaxError(at pos, raw, query string) *QueryError {
	return queryError(at, "The syntax for '%s' is incorrect. (%s)", raw, query)
}

func unresolvedName(at pos, name string) *QueryError {
	return queryError(at, "Failed to resolve name '%s'. It is not a valid table, variable, or function name.", name)
}

// daxErrorBody is the 400 body of a DAX error.
func daxErrorBody(detail string) []byte {
	b := []byte(`{"error":{"code":"DatasetExecuteQueriesError","pbi.error":{"code":"DatasetExecuteQueriesError","parameters":{},"details":[{"code":"DetailsMessage","detail":{"type":1,"value":`)
	b = appendJSONString(b, detail)
	b = append(b, `}},{"code":"AnalysisServicesErrorCode","detail":{"type":1,"value":"`+analysisServicesErrorCode+`"}}]}}}`...)
	return b
}

// pbiErrorBody is the body of the service's errors that carry only a code
// in a pbi.error envelope (PowerBINotAuthorizedException,
// PowerBIEntityNotFound, ...).
func pbiErrorBody(code string) []byte {
	b := []byte(`{"error":{"code":`)
	b = appendJSONString(b, code)
	b = append(b, `,"pbi.error":{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"parameters":{},"details":[],"exceptionCulprit":1}}}`...)
	return b
}

// codeMessageBody is the body of errors of the form
// {"error":{"code":"...","message":"..."}}.
func codeMessageBody(code, message string) []byte {
	b := []byte(`{"error":{"code":`)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, message)
	b = append(b, `}}`...)
	return b
}

// badRequestBody is the body of a request the service cannot bind, in
// ASP.NET's model validation shape.
func badRequestBody(message, target string) []byte {
	b := []byte(`{"error":{"code":"BadRequest","message":"Bad Request","details":[{"message":`)
	b = appendJSONString(b, message)
	b = append(b, `,"target":`...)
	b = appendJSONString(b, target)
	b = append(b, `}]}}`...)
	return b
}

// statusErrorBody is the body FailWith sends for status.
func statusErrorBody(status int) []byte {
	switch status {
	case 500:
		return pbiErrorBody("InternalServerError")
	case 502:
		return codeMessageBody("BadGateway", "The service is temporarily unable to process the request. Please try again later.")
	case 503:
		return codeMessageBody("ServiceUnavailable", "The service is temporarily unavailable. Please try again later.")
	case 504:
		return codeMessageBody("GatewayTimeout", "The request timed out. Please try again later.")
	case 429:
		return codeMessageBody("TooManyRequests", "You have exceeded the amount of requests allowed in the current time frame and further requests will fail.")
	case 401:
		return pbiErrorBody("PowerBINotAuthorizedException")
	case 404:
		return pbiErrorBody("PowerBIEntityNotFound")
	}
	return pbiErrorBody("UnknownError")
}
