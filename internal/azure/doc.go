// Package azure is what pbicopy knows of Azure without the SDK: the clouds
// and their endpoints, the auth block of a job file (how to get Entra ID
// tokens), Key Vault secret references and Storage connection strings. It
// parses and checks; package credential turns an AuthSpec into a token
// credential.
package azure
