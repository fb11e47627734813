package main

import "github.com/tokenmeter/tokenmeter/internal/proxy"

// HeaderRequestIDForTest is the gateway call id response header.
const HeaderRequestIDForTest = proxy.HeaderRequestID

// tokenHash returns the hash part of the principal recorded for cred.
func tokenHash(cred string) string { return proxy.CredentialHash(cred)[len("cred:"):] }
