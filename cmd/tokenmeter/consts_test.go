package main

import "github.com/tokenmeter/tokenmeter/internal/proxy"

// HeaderRequestIDForTest is the gateway call id response header.
const HeaderRequestIDForTest = proxy.HeaderRequestID
