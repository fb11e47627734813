package ledgerrules

import (
	"strconv"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// ChargeSQL returns the SQL expression, over the value columns of a rollup
// row (see Columns), of what the row charges a limit of metric m:
// tokenmeter.Contribution.Charge, written as a sum of columns. It is
// derived from Charge itself, which is linear in a contribution's fields,
// by charging a contribution of one unit in each column, so the SQL says
// what the Go rule says.
func ChargeSQL(m tokenmeter.LimitMetric) string {
	terms := make([]term, 0, len(columns))
	for _, c := range columns {
		var r Row
		*c.ptr(&r) = 1
		terms = append(terms, term{c.name, r.Contribution.Charge(m)})
	}
	return linear(0, terms)
}

// ReservationColumns are the columns of a reservation row that hold its
// worst case; a store's reservations table has them, plus its key and
// labels.
var ReservationColumns = []string{"input_tokens", "output_tokens", "cache_write_5m", "cache_write_1h", "cache_read",
	"reasoning_tokens", "web_search", "web_fetch", "cost_micros"}

// ReservationValues returns r's worst case in ReservationColumns order.
func ReservationValues(r *tokenmeter.Reservation) []int64 {
	u := r.Usage
	return []int64{u.InputTokens, u.OutputTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.CacheReadTokens,
		u.ReasoningTokens, u.WebSearchRequests, u.WebFetchRequests, int64(r.Cost)}
}

// ReservationChargeSQL returns the SQL expression, over a reservation row's
// ReservationColumns, of what an open reservation charges a limit of
// metric m (tokenmeter.Reservation.Charge, derived as ChargeSQL is).
func ReservationChargeSQL(m tokenmeter.LimitMetric) string {
	zero := make([]int64, len(ReservationColumns))
	base := reservationOf(zero).Charge(m)
	terms := make([]term, 0, len(ReservationColumns))
	for i, name := range ReservationColumns {
		unit := make([]int64, len(ReservationColumns))
		unit[i] = 1
		terms = append(terms, term{name, reservationOf(unit).Charge(m) - base})
	}
	return linear(base, terms)
}

// reservationOf is the inverse of ReservationValues.
func reservationOf(v []int64) tokenmeter.Reservation {
	return tokenmeter.Reservation{Usage: tokenmeter.Usage{InputTokens: v[0], OutputTokens: v[1], CacheWrite5mTokens: v[2],
		CacheWrite1hTokens: v[3], CacheReadTokens: v[4], ReasoningTokens: v[5], WebSearchRequests: v[6], WebFetchRequests: v[7]},
		Cost: tokenmeter.Micros(v[8])}
}

type term struct {
	col string
	w   int64
}

// linear writes c + Σ w·col, leaving out zero terms.
func linear(c int64, terms []term) string {
	var parts []string
	if c != 0 {
		parts = append(parts, strconv.FormatInt(c, 10))
	}
	for _, t := range terms {
		switch t.w {
		case 0:
		case 1:
			parts = append(parts, t.col)
		default:
			parts = append(parts, "("+strconv.FormatInt(t.w, 10)+") * "+t.col)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " + ")
}
