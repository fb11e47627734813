package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tokenmeter/tokenmeter"
)

// Ledger is what a reconciliation reads from the ledger (a
// tokenmeter.Store is one).
type Ledger interface {
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
}

// Input is a whole reconciliation: what to compare, the provider's
// client, the ledger, and (by key) the credentials to match.
type Input struct {
	Options
	Client *Client
	Ledger Ledger
	// Costs also reads the provider's cost report and compares daily cost.
	Costs bool
	// Credentials and RouteCredential feed MatchKeys when Options.By is
	// "key" (see there).
	Credentials     []Credential
	RouteCredential string
}

// Run reads the provider's reports in full, then the ledger, and compares
// them. A report that fails on any page is an error and nothing of it is
// used, with one exception: a cost report the provider refuses with 403
// (the admin key lacks the scope) or 404 (not offered for the account)
// leaves cost out of the comparison, with the reason in
// Summary.CostUnavailable, and tokens and requests are compared as usual.
func Run(ctx context.Context, in Input) (Report, error) {
	if _, err := bucketWidth(in.Bucket); err != nil {
		return Report{}, err
	}
	if !in.Until.After(in.Since) {
		return Report{}, tokenmeter.Errorf(tokenmeter.EINVALID, "--until (%s) must be after --since (%s)", in.Until.Format("2006-01-02"), in.Since.Format("2006-01-02"))
	}
	if err := in.Client.CheckKey(); err != nil {
		return Report{}, err
	}
	usage, err := in.Client.Usage(ctx, in.Since, in.Until, in.Bucket)
	if err != nil {
		return Report{}, err
	}
	var costs *CostPage
	unavailable := ""
	if in.Costs {
		c, err := in.Client.Costs(ctx, in.Since, in.Until)
		var apiErr *APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.Status == http.StatusForbidden || apiErr.Status == http.StatusNotFound):
			unavailable = err.Error()
		case err != nil:
			return Report{}, err
		default:
			costs = &c
		}
	}
	ledger, err := in.Ledger.Usage(ctx, tokenmeter.UsageQuery{Since: in.Since, Until: in.Until, Bucket: in.Bucket})
	if err != nil {
		return Report{}, fmt.Errorf("read the ledger: %w", err)
	}
	if in.By == "key" {
		keys, err := in.Client.Keys(ctx)
		if err != nil {
			return Report{}, err
		}
		seen := map[string]bool{}
		var principals []string
		for _, b := range ledger {
			if !seen[b.Principal] {
				seen[b.Principal] = true
				principals = append(principals, b.Principal)
			}
		}
		in.Principals = MatchKeys(in.Credentials, keys, in.RouteCredential, principals)
	}
	rep := Compare(in.Options, usage, costs, ledger)
	rep.Summary.CostUnavailable = unavailable
	return rep, nil
}
