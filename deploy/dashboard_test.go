package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fusebox-io/fusebox/internal/testcluster"
	"github.com/fusebox-io/fusebox/sidecar"
)

const dashboardFile = "grafana/fusebox.json"

// family is an exported metric family: its labels and its type, which
// says whether _bucket, _sum and _count series exist.
type family struct {
	labels []string
	typ    dto.MetricType
}

// exported maps every metric family the coordinator and the sidecar
// export to its labels.
type exported map[string]family

func (e exported) add(name string, f family) {
	old, ok := e[name]
	if !ok {
		e[name] = f
		return
	}
	if f.typ != dto.MetricType_UNTYPED {
		old.typ = f.typ
	}
	for _, l := range f.labels {
		if !slices.Contains(old.labels, l) {
			old.labels = append(old.labels, l)
		}
	}
	e[name] = old
}

func (e exported) addFamilies(mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		f := family{typ: mf.GetType()}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(f.labels, lp.GetName()) {
					f.labels = append(f.labels, lp.GetName())
				}
			}
		}
		e.add(mf.GetName(), f)
	}
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	constraint = regexp.MustCompile(`^c\((.*)\)$`)
)

// addCollectors reads the name and labels of every descriptor, so that a
// family counts as exported before it has a sample. prometheus.Desc
// exposes them only through String; a format change fails here loudly.
// The type comes from the collector's Go type: histograms are known,
// anything else counts as untyped (no _bucket, _sum or _count).
func (e exported) addCollectors(tb testing.TB, cs []prometheus.Collector) {
	tb.Helper()
	for _, c := range cs {
		typ := dto.MetricType_UNTYPED
		switch c.(type) {
		case *prometheus.HistogramVec, prometheus.Histogram:
			typ = dto.MetricType_HISTOGRAM
		case *prometheus.SummaryVec: // a lone Summary has a Histogram's methods: none is exported
			typ = dto.MetricType_SUMMARY
		}
		e.addDescs(tb, c, typ)
	}
}

func (e exported) addDescs(tb testing.TB, c prometheus.Collector, typ dto.MetricType) {
	tb.Helper()
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		s := d.String()
		n, l := descName.FindStringSubmatch(s), descLabels.FindStringSubmatch(s)
		if n == nil || l == nil {
			tb.Fatalf("cannot read a metric's name and labels from its descriptor %s", s)
		}
		f := family{typ: typ}
		for _, lbl := range strings.Split(l[1], ",") {
			if lbl = strings.TrimSpace(lbl); lbl != "" {
				if m := constraint.FindStringSubmatch(lbl); m != nil {
					lbl = m[1]
				}
				f.labels = append(f.labels, lbl)
			}
		}
		e.add(n[1], f)
	}
}

// exportedMetrics builds the real registries: the sidecar's (every family
// touched, sidecar.MetricsGatherer) and a coordinator's, run in-process on
// a real Redis: its collectors' descriptors, and a scrape of its /metrics
// for what the api package registers itself.
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	e := exported{}

	mfs, err := sidecar.MetricsGatherer().Gather()
	if err != nil {
		t.Fatalf("sidecar registry: %v", err)
	}
	e.addFamilies(mfs)

	c := testcluster.Start(t, testcluster.Options{})
	coord := c.Coordinators[0]
	e.addCollectors(t, coord.Collectors())
	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(coord.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
		}
		return body
	}
	get("/healthz") // so that the request counter has a sample
	parser := expfmt.NewTextParser(model.LegacyValidation)
	scraped, err := parser.TextToMetricFamilies(strings.NewReader(string(get("/metrics"))))
	if err != nil {
		t.Fatalf("coordinator /metrics: %v", err)
	}
	for _, mf := range scraped {
		e.addFamilies([]*dto.MetricFamily{mf})
	}
	return e
}

// Labels every series has once Prometheus scrapes it (target labels), and
// those a Kubernetes service discovery commonly adds.
var targetLabels = []string{"job", "instance", "namespace", "pod", "container", "service", "endpoint"}

var (
	metricName   = regexp.MustCompile(`\bfusebox_[A-Za-z0-9_]+`)
	selector     = regexp.MustCompile(`\b(fusebox_[A-Za-z0-9_]+)\s*\{([^}]*)\}`)
	matcherLabel = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping     = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	labelValues  = regexp.MustCompile(`label_values\(\s*(fusebox_[A-Za-z0-9_]+)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)`)
	legendLabel  = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
)

// resolve maps a series name in a query to its family: the name itself,
// or a histogram's _bucket, _sum or _count series (a summary's _sum and
// _count).
func (e exported) resolve(name string) (family, bool) {
	if f, ok := e[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			f, ok := e[base]
			if ok && (f.typ == dto.MetricType_HISTOGRAM || f.typ == dto.MetricType_SUMMARY && suffix != "_bucket") {
				if suffix == "_bucket" {
					f.labels = append(slices.Clone(f.labels), "le")
				}
				return f, true
			}
		}
	}
	return family{}, false
}

// checkQuery returns what is wrong with one PromQL expression: a fusebox
// metric nobody exports, or a label that none of its metrics has. legend
// is the query's legend format, whose {{labels}} must exist too.
func (e exported) checkQuery(expr, legend string) []string {
	var problems []string
	known := slices.Clone(targetLabels)
	names := metricName.FindAllString(expr, -1)
	for _, n := range names {
		f, ok := e.resolve(n)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not exported by the coordinator or the sidecar", n))
			continue
		}
		known = append(known, f.labels...)
	}
	if len(names) == 0 {
		problems = append(problems, "queries no fusebox metric")
	}
	check := func(where, l string) {
		if !slices.Contains(known, l) {
			problems = append(problems, fmt.Sprintf("label %q (%s) is not a label of %v", l, where, names))
		}
	}
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		f, _ := e.resolve(m[1])
		for _, lm := range matcherLabel.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(f.labels, lm[1]) && !slices.Contains(targetLabels, lm[1]) {
				problems = append(problems, fmt.Sprintf("label %q is not a label of %s", lm[1], m[1]))
			}
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				check("grouping", l)
			}
		}
	}
	for _, lv := range labelValues.FindAllStringSubmatch(expr, -1) {
		if f, ok := e.resolve(lv[1]); ok && !slices.Contains(f.labels, lv[2]) {
			problems = append(problems, fmt.Sprintf("label_values: %s has no label %q", lv[1], lv[2]))
		}
	}
	for _, l := range legendLabel.FindAllStringSubmatch(legend, -1) {
		check("legend", l[1])
	}
	if !balanced(expr) {
		problems = append(problems, "unbalanced brackets")
	}
	return problems
}

func balanced(s string) bool {
	var stack []rune
	inString := false
	for _, r := range s {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			want := map[rune]rune{')': '(', ']': '[', '}': '{'}[r]
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inString
}

// The parts of Grafana's dashboard model the test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string         `json:"name"`
			Datasource map[string]any `json:"datasource"`
			Expr       string         `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Datasource map[string]any  `json:"datasource"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	GridPos    struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	} `json:"gridPos"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// query is one PromQL expression of the dashboard and where it is.
type query struct{ where, expr, legend string }

func loadDashboard(t *testing.T) (dashboard, []query) {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var qs []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				qs = append(qs, query{fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Expr, tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("variable %s: query is neither a string nor {query}", v.Name)
			}
		}
		qs = append(qs, query{"variable " + v.Name, q.Query, ""})
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, query{"annotation " + a.Name, a.Expr, ""})
		}
	}
	return d, qs
}

func TestDashboard_QueriesExportedMetrics(t *testing.T) {
	_, qs := loadDashboard(t)
	e := exportedMetrics(t)

	t.Run("every metric and label it queries is exported", func(t *testing.T) {
		for _, q := range qs {
			for _, p := range e.checkQuery(q.expr, q.legend) {
				t.Errorf("%s: %s\n  %s", q.where, p, q.expr)
			}
		}
	})
	t.Run("the check refuses what is not exported", func(t *testing.T) {
		for expr, want := range map[string]string{
			`rate(fusebox_sidecar_servd_total[5m])`:                            "not exported",
			`sum by (model) (rate(fusebox_sidecar_served_total[5m]))`:          `label "model"`,
			`fusebox_breaker_state{status="open"}`:                             `label "status"`,
			`histogram_quantile(0.9, rate(fusebox_outcomes_total_bucket[1m]))`: "not exported",
			`sum(rate(fusebox_probes_total[5m])`:                               "unbalanced",
		} {
			if ps := e.checkQuery(expr, ""); !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, want) }) {
				t.Errorf("%s: problems %q, want one saying %q", expr, ps, want)
			}
		}
	})
	t.Run("shows breakers, transitions, fallbacks, latency, degraded agents and probes", func(t *testing.T) {
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`fusebox_breaker_state\b`),
			regexp.MustCompile(`by \(reason\) \(increase\(fusebox_transitions_total`),
			regexp.MustCompile(`fusebox_sidecar_served_total\{[^}]*fallback="true"`),
			regexp.MustCompile(`histogram_quantile\(0\.95, sum by \(provider, le\) \(rate\(fusebox_sidecar_upstream_seconds_bucket`),
			regexp.MustCompile(`fusebox_agents_degraded\b`),
			regexp.MustCompile(`fusebox_probes_total\b`),
		} {
			if !slices.ContainsFunc(qs, func(q query) bool { return want.MatchString(q.expr) }) {
				t.Errorf("no query matches %s", want)
			}
		}
	})
}

func TestDashboard_Model(t *testing.T) {
	d, qs := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	if len(qs) < 20 {
		t.Errorf("%d queries found; the walk over the model is broken", len(qs))
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			if g := p.GridPos; g.W < 1 || g.X < 0 || g.X+g.W > 24 || g.H < 1 {
				t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, g)
			}
			if p.Type != "row" {
				if p.Datasource["uid"] != "${datasource}" || len(p.Targets) == 0 {
					t.Errorf("panel %q: datasource %v, %d targets; want ${datasource} and a query", p.Title, p.Datasource, len(p.Targets))
				}
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: target %q: empty or repeated refId, or no expr", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if !slices.ContainsFunc(d.Templating.List, func(v variable) bool { return v.Type == "datasource" && v.Name == "datasource" }) {
		t.Error("no datasource variable named datasource")
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && v.Datasource["uid"] != "${datasource}" {
			t.Errorf("variable %s: datasource %v, want ${datasource}", v.Name, v.Datasource)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" && a.Datasource["uid"] != "${datasource}" {
			t.Errorf("annotation %s: datasource %v, want ${datasource}", a.Name, a.Datasource)
		}
	}
}
