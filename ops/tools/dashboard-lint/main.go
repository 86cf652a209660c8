// Command dashboard-lint checks Grafana dashboard JSON files: the schema, strictly, with
// Grafana's own generated types (grafana-foundation-sdk: unknown fields, wrong types and
// missing required fields are errors, panel options and Prometheus queries included), then
// rules in the spirit of grafana/dashboard-linter, whose releases depend on modules the
// project's machines cannot fetch:
//
//	panel-title            every panel and row has a title
//	panel-datasource       every panel and query uses the provisioned Prometheus datasource
//	target-expr            every query has a refId and a non-empty expr
//	panel-rate-interval    rate/irate/increase in time series use [$__rate_interval]
//	panel-units            time series and stat panels set a unit
//	panel-ids              panel ids are unique
//
// Usage: dashboard-lint -datasource-uid UID FILE...; prints one line per finding and exits
// 1 when there is any.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

var rangeFunctions = regexp.MustCompile(`\b(rate|irate|increase)\s*\([^()]*\[([^\]]*)\]`)

type finding struct{ rule, where, message string }

type panel = map[string]any

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func lintPanel(p panel, uid string, seen map[float64]string, out *[]finding) {
	title := str(p, "title")
	kind := str(p, "type")
	where := fmt.Sprintf("panel %q (%s)", title, kind)
	if title == "" {
		*out = append(*out, finding{"panel-title", where, "no title"})
	}
	if id, ok := p["id"].(float64); ok {
		if other, dup := seen[id]; dup {
			*out = append(*out, finding{"panel-ids", where, fmt.Sprintf("id %v also used by %s", id, other)})
		}
		seen[id] = where
	}
	if kind == "row" {
		if nested, ok := p["panels"].([]any); ok {
			for _, n := range nested {
				if np, ok := n.(panel); ok {
					lintPanel(np, uid, seen, out)
				}
			}
		}
		return
	}
	checkDatasource := func(ds any, what string) {
		ref, _ := ds.(map[string]any)
		if ref == nil || str(ref, "type") != "prometheus" || str(ref, "uid") != uid {
			*out = append(*out, finding{"panel-datasource", where, fmt.Sprintf("%s datasource is %v, not prometheus/%s", what, ds, uid)})
		}
	}
	checkDatasource(p["datasource"], "panel")
	targets, _ := p["targets"].([]any)
	if len(targets) == 0 {
		*out = append(*out, finding{"target-expr", where, "no queries"})
	}
	for _, t := range targets {
		target, _ := t.(map[string]any)
		if target == nil {
			continue
		}
		ref := str(target, "refId")
		if ref == "" || str(target, "expr") == "" {
			*out = append(*out, finding{"target-expr", where, fmt.Sprintf("query %q has no refId or no expr", ref)})
		}
		if ds, ok := target["datasource"]; ok {
			checkDatasource(ds, "query "+ref)
		}
		if kind == "timeseries" {
			for _, m := range rangeFunctions.FindAllStringSubmatch(str(target, "expr"), -1) {
				if m[2] != "$__rate_interval" {
					*out = append(*out, finding{"panel-rate-interval", where, fmt.Sprintf("query %s: %s(...[%s]) should use [$__rate_interval]", ref, m[1], m[2])})
				}
			}
		}
	}
	if kind == "timeseries" || kind == "stat" {
		unit := ""
		if fc, ok := p["fieldConfig"].(map[string]any); ok {
			if defaults, ok := fc["defaults"].(map[string]any); ok {
				unit = str(defaults, "unit")
			}
		}
		if unit == "" {
			*out = append(*out, finding{"panel-units", where, "no unit"})
		}
	}
}

// real turns the SDK's empty error lists (a nil cog.BuildErrors inside an error) into nil.
func real(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func lint(path, uid string) ([]finding, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var found []finding
	var typed dashboard.Dashboard
	if err := real(typed.UnmarshalJSONStrict(raw)); err != nil {
		found = append(found, finding{"schema", "dashboard", err.Error()})
	} else if err := real(typed.Validate()); err != nil {
		found = append(found, finding{"schema", "dashboard", err.Error()})
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	seen := map[float64]string{}
	panels, _ := doc["panels"].([]any)
	for _, p := range panels {
		if pm, ok := p.(panel); ok {
			lintPanel(pm, uid, seen, &found)
		}
	}
	return found, nil
}

func main() {
	uid := flag.String("datasource-uid", "prometheus", "uid of the provisioned Prometheus datasource")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-lint [-datasource-uid UID] FILE...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, path := range flag.Args() {
		found, err := lint(path, *uid)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		for _, f := range found {
			failed = true
			fmt.Printf("%s: [%s] %s: %s\n", path, f.rule, f.where, f.message)
		}
		if len(found) == 0 {
			fmt.Printf("%s: ok\n", path)
		}
	}
	if failed {
		os.Exit(1)
	}
}
