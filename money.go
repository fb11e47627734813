package tokenmeter

import (
	"strconv"
)

// Micros is an amount of US dollars in millionths (micro-dollars). All money
// in tokenmeter is kept in this unit; floats appear only when printing.
type Micros int64

// USD returns m in dollars, for display and JSON only.
func (m Micros) USD() float64 { return float64(m) / 1e6 }

// String formats m as dollars with six decimals, e.g. "1.234567".
func (m Micros) String() string {
	neg := m < 0
	if neg {
		m = -m
	}
	whole := strconv.FormatInt(int64(m/1_000_000), 10)
	frac := strconv.FormatInt(int64(m%1_000_000)+1_000_000, 10)[1:]
	if neg {
		return "-" + whole + "." + frac
	}
	return whole + "." + frac
}
