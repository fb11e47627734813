package main

// The time zone database is embedded (about 450 KB) so that --tz and limit
// windows work on machines without /usr/share/zoneinfo.
import _ "time/tzdata"
