// Package fakepbi is an in-process fake of the Power BI executeQueries and
// executeDaxQueries REST APIs and of the Entra ID (Azure AD) client-credentials token endpoint,
// served over TLS on 127.0.0.1. Tests, benchmarks and `pbicopy demo` use it.
//
// # What it serves
//
// Entra ID, at AuthorityHost() (give it to azidentity as
// ClientOptions.Cloud.ActiveDirectoryAuthorityHost, with
// DisableInstanceDiscovery and Client() as transport):
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration
//	POST /{tenant}/oauth2/v2.0/token
//
// The token endpoint takes grant_type=client_credentials with the client id
// and either the secret (form fields or HTTP Basic) or, when
// Options.ClientAssertionCheck is set, a jwt-bearer client_assertion. The
// scope must be https://analysis.windows.net/powerbi/api/.default (the
// openid, profile and offline_access scopes MSAL adds are ignored, as Entra
// ignores them). Mistakes answer Entra's error shape and codes: AADSTS7000215
// (wrong secret, 401 invalid_client), AADSTS700016 (unknown client, 400
// unauthorized_client), AADSTS70011 (bad scope, 400 invalid_scope),
// AADSTS90002 (unknown tenant), AADSTS900144 (missing parameter). Tokens are
// opaque random strings the server remembers, valid for
// Options.TokenLifetime.
//
// Power BI, at URL():
//
//	POST /v1.0/myorg/groups/{workspaceId}/datasets/{datasetId}/executeQueries
//
// Every answer carries a RequestId header. In the order the checks are made
// (after Options.Latency): 405 for a method other than POST; injected
// failures (Redirect, RedirectTo, Throttle, FailWith, FailWithInfo); 401
// PowerBINotAuthorizedException for a missing or unknown bearer token; 403
// TokenExpired for an expired one; 403 "API is not accessible for
// application" on the non-group path /v1.0/myorg/datasets/{id}/executeQueries;
// 429 beyond Options.RateLimit; 404 PowerBIEntityNotFound for another
// workspace or dataset; with Options.HeaderOnlyErrors, the token and
// workspace failures answer as the live service often does, with an empty
// body and the code in the X-PowerBI-Error-Info header (401 InvalidToken,
// 403 TokenExpired, 401 GroupNotAccessible); 400 BadRequest for a body that is not JSON or does
// not hold exactly one query; 400 DatasetExecuteQueriesError for a DAX error;
// else 200 with the result, streamed (unless CutBody cuts it or Stall makes
// it go silent, before the headers or after some bytes).
//
// The executeDaxQueries (Apache Arrow) API is served beside it (arrow.go),
// under the same checks, injected failures, rate limit, cuts and stalls:
//
//	POST /v1.0/myorg/groups/{workspaceId}/datasets/{datasetId}/executeDaxQueries
//
// Its body is {"query": ..., "resultsetRowcountLimit": n, "schemaOnly": b}.
// The answer is application/vnd.apache.arrow.stream: one Arrow IPC stream
// per EVALUATE of the query, written with arrow-go's writer (LZ4-frame
// buffers, batches of Options.ArrowBatchRows rows), with the service's types
// (Integer int64, Double float64, Currency decimal128(19,4), String
// dictionary<int32, utf8> with a dictionary per batch, Boolean bool,
// DateTime date64 of the wall clock); resultsetRowcountLimit caps the rows
// of each stream and schemaOnly sends the schemas alone. A DAX error answers
// 200 with an error rowset: schema metadata IsError=true, FaultCode and
// FaultString, and one row of ErrorCode, ErrorMessage, ErrorDescription,
// ErrorLine and ErrorColumn. Options.ExecMetrics appends a rowset marked
// IsExecMetrics=true.
//
// The dataset refresh API is served too (refresh.go):
//
//	POST   /v1.0/myorg/groups/{workspaceId}/datasets/{datasetId}/refreshes
//	GET    /v1.0/myorg/groups/{workspaceId}/datasets/{datasetId}/refreshes?$top=n
//	GET    /v1.0/myorg/groups/{workspaceId}/datasets/{datasetId}/refreshes/{refreshId}
//	DELETE /v1.0/myorg/groups/{workspaceId}/datasets/{datasetId}/refreshes/{refreshId}
//
// with standard and enhanced refreshes, 400 for a refresh requested while
// another runs, and NextRefresh and StartScheduledRefresh to make a refresh
// take several polls, fail with a serviceExceptionJson, or be running
// already.
//
// # The result body
//
// {"results":[{"tables":[{"rows":[{...},...]}]}]}, compact, written while
// rows are generated (one reused buffer, flushed every 32 KiB): memory does
// not grow with the result. Row keys are Table[Column] for model columns and
// [name] for SELECTCOLUMNS columns. Blank values are omitted from the row
// object unless serializerSettings.includeNulls is true, then they are null.
// Int64 values are exact, Double values use Go's shortest 'g' form (1e+308,
// 0.1, -0), Currency values are JSON numbers with at most 4 decimals (12.5,
// -3, 0.0001), DateTime values are strings without zone and without
// trailing fractional zeros ("2024-02-29T00:00:00",
// "2024-03-31T23:59:59.997"), strings are JSON-escaped with non-ASCII kept
// as UTF-8. A Variant column (a measure that returns a number or "N/A")
// writes each value as its own type does; it cannot be compared in a filter.
//
// Limits behave like the service's: beyond MaxRows rows or MaxValues values
// the rows stop after the last one that fits and an error object
// {"code":"DatasetExecuteQueriesError","message":"More than 100000 rows in a
// query result"} (or "... values ...") follows in the slot
// Options.TruncationSlot names; once MaxBytes of row JSON is written, the
// current row is completed and the rows stop without any error, which is how
// clients silently lose data.
//
// # The DAX it evaluates
//
// A small recursive-descent parser (parse.go) reads:
//
//	EVALUATE <table>
//	EVALUATE SELECTCOLUMNS(<table>, "name", T[Col], "name2", [Col], ...)
//	EVALUATE TOPN(<n>, <table> [, <colref>, ASC|DESC ...])
//	EVALUATE FILTER(<table>, <colref> <op> <literal> [&& ...] [|| ...])
//	... ORDER BY <colref> [ASC|DESC] [, ...]
//
// nested freely, where <table> is a name, a 'quoted name' or one of the
// functions; ops are > >= < <= = == <>; literals are numbers, "strings"
// ("" escapes a quote), DATE(y, m, d), DATETIME(y, m, d, h, mi, s),
// dt"2024-01-31T10:00:00", TRUE, FALSE (with or without ()) and BLANK().
// Keywords and names are case-insensitive; // and -- line comments and /* */
// are ignored. Semantics follow DAX: text compares case-insensitively, BLANK
// compares as 0, "" or FALSE except with ==, ORDER BY sorts blanks first,
// TOPN's default order is DESC and it returns every row tied with the n-th
// (without order keys, the first n rows of the table).
// An unknown name, a syntax error or a type mismatch answers the real DAX
// error shape with a message like the engine's ("Query (1, 10) Failed to
// resolve name 'Salez'. ...").
//
// Evaluation streams: EVALUATE, SELECTCOLUMNS, FILTER, TOPN and ORDER BY on
// a table's SortedBy key (either direction) use O(1) memory, and FILTER on
// the key is a binary search, so the keyset paging query
// EVALUATE TOPN(n, FILTER(T, T[Key] > k), T[Key], ASC) ORDER BY T[Key] ASC
// costs O(n) whatever the table size. TOPN in another order keeps a heap of
// n rows; ORDER BY in another order sorts row indices in memory.
package fakepbi
