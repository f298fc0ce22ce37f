package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The release every test renders: `helm install prod deploy/helm/fusebox -n llm`.
const (
	chartDir  = "helm/fusebox"
	release   = "prod"
	namespace = "llm"
)

// serviceMonitor is the part of prometheus-operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart renders. Decoded strictly, a field
// the chart writes that is not here fails the test: add it here only
// after checking the CRD has it.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string `json:"jobLabel"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects is one rendering of the chart, decoded.
type objects struct {
	Deployments     map[string]*appsv1.Deployment
	Services        map[string]*corev1.Service
	ConfigMaps      map[string]*corev1.ConfigMap
	Secrets         map[string]*corev1.Secret
	PDBs            map[string]*policyv1.PodDisruptionBudget
	ServiceMonitors map[string]*serviceMonitor
	Notes           string
	// Names lists every object as kind/name, in rendering order.
	Names []string
}

// renderChart renders a chart as `helm install` would, with Helm's
// strict mode on (a template reading a value that does not exist is an
// error, as under `helm lint --strict`). values is YAML, as in a -f file.
func renderChart(c *chart.Chart, values string) (map[string]string, error) {
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{
		Name: release, Namespace: namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(c, rv)
}

func loadChart(tb testing.TB) *chart.Chart {
	tb.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		tb.Fatalf("load %s: %v", chartDir, err)
	}
	return c
}

// render renders the fusebox chart with values and decodes every
// manifest, failing the test on any error.
func render(tb testing.TB, values string) *objects {
	tb.Helper()
	files, err := renderChart(loadChart(tb), values)
	if err != nil {
		tb.Fatalf("render with values:\n%s\nerror: %v", values, err)
	}
	return decodeAll(tb, files)
}

// renderErr renders the fusebox chart with values that must be refused,
// and returns the error.
func renderErr(tb testing.TB, values string) error {
	tb.Helper()
	_, err := renderChart(loadChart(tb), values)
	if err == nil {
		tb.Fatalf("rendered with values that should be refused:\n%s", values)
	}
	return err
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeAll splits each rendered file into YAML documents and decodes
// each one strictly (unknown and duplicate fields are errors, field names
// are case-sensitive) into its Kubernetes API type.
func decodeAll(tb testing.TB, files map[string]string) *objects {
	tb.Helper()
	o := &objects{
		Deployments: map[string]*appsv1.Deployment{}, Services: map[string]*corev1.Service{},
		ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, ServiceMonitors: map[string]*serviceMonitor{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, file := range names {
		if path.Base(file) == "NOTES.txt" {
			o.Notes = files[file]
			continue
		}
		for i, doc := range docSeparator.Split(files[file], -1) {
			if isBlankYAML(doc) {
				continue
			}
			where := fmt.Sprintf("%s (document %d)", file, i)
			kind, name := decodeOne(tb, o, where, []byte(doc))
			o.Names = append(o.Names, kind+"/"+name)
		}
	}
	return o
}

func isBlankYAML(doc string) bool {
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func decodeOne(tb testing.TB, o *objects, where string, doc []byte) (kind, name string) {
	tb.Helper()
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		tb.Fatalf("%s: not YAML: %v\n%s", where, err, doc)
	}
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		tb.Fatalf("%s: %v", where, err)
	}
	kind, name = head.Kind, head.Metadata.Name
	strict := func(v any) {
		tb.Helper()
		strictErrs, err := sigsjson.UnmarshalStrict(js, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
		if err != nil {
			tb.Fatalf("%s: %s/%s: %v", where, kind, name, err)
		}
		if len(strictErrs) > 0 {
			tb.Fatalf("%s: %s/%s: %v\n%s", where, kind, name, strictErrs, doc)
		}
	}
	if !addUnique(tb, o, where, head.APIVersion, kind, name) {
		return
	}
	switch head.APIVersion + " " + kind {
	case "apps/v1 Deployment":
		v := &appsv1.Deployment{}
		strict(v)
		o.Deployments[name] = v
	case "v1 Service":
		v := &corev1.Service{}
		strict(v)
		o.Services[name] = v
		for _, msg := range validation.IsDNS1035Label(name) {
			tb.Errorf("%s: Service name %q: %s", where, name, msg)
		}
	case "v1 ConfigMap":
		v := &corev1.ConfigMap{}
		strict(v)
		o.ConfigMaps[name] = v
	case "v1 Secret":
		v := &corev1.Secret{}
		strict(v)
		o.Secrets[name] = v
	case "policy/v1 PodDisruptionBudget":
		v := &policyv1.PodDisruptionBudget{}
		strict(v)
		o.PDBs[name] = v
	case "monitoring.coreos.com/v1 ServiceMonitor":
		v := &serviceMonitor{}
		strict(v)
		o.ServiceMonitors[name] = v
	default:
		tb.Fatalf("%s: unexpected object %s %s/%s: the test does not know it", where, head.APIVersion, kind, name)
	}
	checkMeta(tb, where, kind, head.Metadata)
	return kind, name
}

func addUnique(tb testing.TB, o *objects, where, apiVersion, kind, name string) bool {
	tb.Helper()
	if kind == "" || apiVersion == "" || name == "" {
		tb.Fatalf("%s: an object without apiVersion, kind or name", where)
	}
	if slices.Contains(o.Names, kind+"/"+name) {
		tb.Errorf("%s: %s/%s rendered twice", where, kind, name)
		return false
	}
	return true
}

// checkMeta checks what the API server would refuse in metadata, and
// that every object is in the release's namespace with the chart's labels.
func checkMeta(tb testing.TB, where, kind string, m metav1.ObjectMeta) {
	tb.Helper()
	for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
		tb.Errorf("%s: %s name %q: %s", where, kind, m.Name, msg)
	}
	if m.Namespace != namespace {
		tb.Errorf("%s: %s/%s: namespace %q, want %q", where, kind, m.Name, m.Namespace, namespace)
	}
	checkLabels(tb, where+" "+kind+"/"+m.Name, m.Labels)
	for _, want := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component", "app.kubernetes.io/managed-by"} {
		if m.Labels[want] == "" {
			tb.Errorf("%s: %s/%s: no label %s", where, kind, m.Name, want)
		}
	}
}

func checkLabels(tb testing.TB, where string, ls map[string]string) {
	tb.Helper()
	for k, v := range ls {
		for _, msg := range validation.IsQualifiedName(k) {
			tb.Errorf("%s: label key %q: %s", where, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			tb.Errorf("%s: label %s=%q: %s", where, k, v, msg)
		}
	}
}

// equalJSON reports whether a and b encode alike, logging both if not.
func equalJSON(tb testing.TB, a, b any) bool {
	tb.Helper()
	ja, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	jb, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		tb.Logf("got:\n%s\nwant:\n%s", ja, jb)
		return false
	}
	return true
}
