package deploy_test

import (
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fusebox-io/fusebox/config"
	"github.com/fusebox-io/fusebox/probe"
	"github.com/fusebox-io/fusebox/sidecar"
	"github.com/fusebox-io/fusebox/statestore"
)

// world is what a rendering's pods see: the Secrets and ConfigMaps it
// rendered, and those its values name, which the cluster must already
// hold (External*). A reference to anything else fails the test.
type world struct {
	*objects
	ExternalSecrets    map[string]map[string]string
	ExternalConfigMaps map[string]map[string]string
}

func (w *world) secret(tb testing.TB, where, name, key string) string {
	tb.Helper()
	if s, ok := w.Secrets[name]; ok {
		if v, ok := s.Data[key]; ok {
			return string(v)
		}
		if v, ok := s.StringData[key]; ok {
			return v
		}
		tb.Fatalf("%s: Secret %s (rendered) has no key %q", where, name, key)
	}
	if s, ok := w.ExternalSecrets[name]; ok {
		if v, ok := s[key]; ok {
			return v
		}
		tb.Fatalf("%s: Secret %s (named by the values) is not expected to have key %q", where, name, key)
	}
	tb.Fatalf("%s: Secret %s is neither rendered nor named by the values", where, name)
	return ""
}

func (w *world) secretData(tb testing.TB, where, name string) map[string]string {
	tb.Helper()
	if s, ok := w.Secrets[name]; ok {
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		for k, v := range s.StringData {
			out[k] = v
		}
		return out
	}
	if s, ok := w.ExternalSecrets[name]; ok {
		return s
	}
	tb.Fatalf("%s: Secret %s is neither rendered nor named by the values", where, name)
	return nil
}

func (w *world) configMapKey(tb testing.TB, where, name, key string) string {
	tb.Helper()
	if c, ok := w.ConfigMaps[name]; ok {
		v, ok := c.Data[key]
		if !ok {
			tb.Fatalf("%s: ConfigMap %s (rendered) has no key %q", where, name, key)
		}
		return v
	}
	if c, ok := w.ExternalConfigMaps[name]; ok {
		v, ok := c[key]
		if !ok {
			tb.Fatalf("%s: ConfigMap %s (named by the values) is not expected to have key %q", where, name, key)
		}
		return v
	}
	tb.Fatalf("%s: ConfigMap %s is neither rendered nor named by the values", where, name)
	return ""
}

// env is a container's environment as the kubelet builds it: envFrom
// first, then env in order, $(VAR) expanded from the variables before it.
// A fieldRef reads as "<fieldPath of the pod>".
func (w *world) env(tb testing.TB, where string, c corev1.Container) map[string]string {
	tb.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.SecretRef != nil:
			for k, v := range w.secretData(tb, where, ef.SecretRef.Name) {
				env[ef.Prefix+k] = v
			}
		default:
			tb.Fatalf("%s: envFrom %+v: only secretRef is expected", where, ef)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expandEnv(e.Value, env)
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = w.secret(tb, where+" env "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "<" + e.ValueFrom.FieldRef.FieldPath + ">"
		default:
			tb.Fatalf("%s: env %s: unexpected source %+v", where, e.Name, e.ValueFrom)
		}
	}
	return env
}

// expandEnv expands $(VAR) as Kubernetes does: a defined variable is
// replaced, an undefined reference stays as written, $$ is a $.
func expandEnv(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// file reads the file a container sees at p, from the ConfigMap volume
// mounted on its folder.
func (w *world) file(tb testing.TB, where string, pod corev1.PodSpec, c corev1.Container, p string) string {
	tb.Helper()
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		if !m.ReadOnly {
			tb.Errorf("%s: %s is mounted read-write", where, m.MountPath)
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			tb.Fatalf("%s: volume %s mounted on %s is not in the pod", where, m.Name, dir)
		}
		cm := pod.Volumes[i].ConfigMap
		if cm == nil {
			tb.Fatalf("%s: %s is mounted from volume %s, which is no ConfigMap", where, dir, m.Name)
		}
		key := base
		if len(cm.Items) > 0 {
			j := slices.IndexFunc(cm.Items, func(it corev1.KeyToPath) bool { return it.Path == base })
			if j < 0 {
				tb.Fatalf("%s: ConfigMap volume %s maps no key to %s", where, m.Name, base)
			}
			key = cm.Items[j].Key
		}
		return w.configMapKey(tb, where, cm.Name, key)
	}
	tb.Fatalf("%s: nothing is mounted on %s (for %s)", where, dir, p)
	return ""
}

// facts are what checkWorld found, for a test's own assertions.
type facts struct {
	Coordinator    *appsv1.Deployment
	CoordContainer corev1.Container
	CoordEnv       map[string]string
	CoordConfig    *config.Config
	ConfigText     string
	Service        *corev1.Service
	Tokens         []config.Token
	RedisURL       string
	Sidecars       []sidecarFacts
}

type sidecarFacts struct {
	Deployment *appsv1.Deployment
	Container  corev1.Container
	Env        map[string]string
	Config     *sidecar.Config
}

const (
	coordinatorName = release + "-fusebox-coordinator"
	coordinatorPort = 8080
)

// checkWorld checks what must hold for every value set, and returns what
// it found.
func checkWorld(t *testing.T, w *world) *facts {
	t.Helper()
	f := &facts{}
	for name, d := range w.Deployments {
		checkDeployment(t, w, name, d)
	}
	f.Coordinator = w.Deployments[coordinatorName]
	if f.Coordinator == nil {
		t.Fatalf("no Deployment %s; rendered: %v", coordinatorName, w.Names)
	}
	checkCoordinator(t, w, f)
	checkService(t, w, f)
	checkPDBs(t, w, f)
	checkServiceMonitors(t, w, f)
	for _, d := range w.Deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "fusebox-sidecar" {
				f.Sidecars = append(f.Sidecars, checkSidecar(t, w, f, d, c))
			}
		}
	}
	checkNoPlaintextSecrets(t, w)
	return f
}

func checkDeployment(t *testing.T, w *world, name string, d *appsv1.Deployment) {
	t.Helper()
	where := "Deployment " + name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("%s: selector %v: %v", where, d.Spec.Selector, err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: its selector %s does not match its pods' labels %v", where, sel, d.Spec.Template.Labels)
	}
	checkLabels(t, where+" pod template", d.Spec.Template.Labels)
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the pod mounts a service account token; fusebox never calls the Kubernetes API", where)
	}
	for _, c := range pod.Containers {
		cw := where + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", cw)
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil && pod.SecurityContext != nil {
			nonRoot = pod.SecurityContext.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: may run as root", cw)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem is writable", cw)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allows privilege escalation", cw)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: keeps Linux capabilities", cw)
		}
		if len(c.Resources.Requests) == 0 {
			t.Errorf("%s: no resource requests", cw)
		}
		for _, m := range c.VolumeMounts {
			if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
				t.Errorf("%s: mounts volume %s, which the pod lacks", cw, m.Name)
			}
		}
		w.env(t, cw, c) // every reference resolves
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			for _, it := range v.ConfigMap.Items {
				w.configMapKey(t, where+" volume "+v.Name, v.ConfigMap.Name, it.Key)
			}
		}
		if v.Secret != nil {
			w.secretData(t, where+" volume "+v.Name, v.Secret.SecretName)
		}
	}
}

// flagValue is the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func checkProbe(t *testing.T, where string, c corev1.Container, p *corev1.Probe, wantPath string, wantPort int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no HTTP probe on %s", where, wantPath)
		return
	}
	if p.HTTPGet.Path != wantPath {
		t.Errorf("%s: probe path %q, want %q", where, p.HTTPGet.Path, wantPath)
	}
	if port, ok := containerPort(c, p.HTTPGet.Port); !ok || port != wantPort {
		t.Errorf("%s: probe port %s is container port %d, want %d", where, p.HTTPGet.Port.String(), port, wantPort)
	}
}

func checkCoordinator(t *testing.T, w *world, f *facts) {
	t.Helper()
	d := f.Coordinator
	where := "Deployment " + d.Name
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", where, len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	f.CoordContainer = c
	if listen, _ := flagValue(c.Args, "listen"); listen != "0.0.0.0:8080" {
		t.Errorf("%s: --listen %q, want 0.0.0.0:8080 (args %q)", where, listen, c.Args)
	}
	if p, ok := containerPort(c, intstr.FromString("http")); !ok || p != coordinatorPort {
		t.Errorf("%s: container port http is %d, want %d", where, p, coordinatorPort)
	}
	checkProbe(t, where+" readiness", c, c.ReadinessProbe, "/readyz", coordinatorPort)
	checkProbe(t, where+" liveness", c, c.LivenessProbe, "/healthz", coordinatorPort)

	env := w.env(t, where, c)
	f.CoordEnv = env
	getenv := func(k string) string { return env[k] }
	if env["FUSEBOX_ID"] != "<metadata.name>" {
		t.Errorf("%s: FUSEBOX_ID %q, want the pod's name", where, env["FUSEBOX_ID"])
	}
	if env["FUSEBOX_PREFIX"] == "" {
		t.Errorf("%s: no FUSEBOX_PREFIX", where)
	}

	// The policy file: mounted where --config says, and accepted by the
	// coordinator's own parser, its tokens and canaries resolved from the
	// container's environment as at start.
	cfgPath, ok := flagValue(c.Args, "config")
	if !ok {
		t.Fatalf("%s: no --config in args %q", where, c.Args)
	}
	f.ConfigText = w.file(t, where, d.Spec.Template.Spec, c, cfgPath)
	cfg, err := config.Parse([]byte(f.ConfigText))
	if err != nil {
		t.Fatalf("%s: the config file is refused by config.Parse: %v\n%s", where, err, f.ConfigText)
	}
	f.CoordConfig = cfg
	fileTokens, err := cfg.ResolveTokens(getenv)
	if err != nil {
		t.Errorf("%s: the config file's tokens do not resolve from the container's env: %v", where, err)
	}
	if _, err := probe.NewAll(cfg.Canaries, getenv, nil); err != nil {
		t.Errorf("%s: the canaries would not start with the container's env: %v", where, err)
	}

	// FUSEBOX_TOKENS as cmd/coordinator reads it.
	raw, ok := env["FUSEBOX_TOKENS"]
	if !ok {
		t.Fatalf("%s: no FUSEBOX_TOKENS", where)
	}
	for i, entry := range strings.Split(raw, ",") {
		parts := strings.SplitN(strings.TrimSpace(entry), ":", 3)
		if len(parts) != 3 {
			t.Fatalf("%s: FUSEBOX_TOKENS entry %d is not name:role:secret", where, i+1)
		}
		tok := config.Token{Name: parts[0], Role: config.Role(parts[1]), Secret: parts[2]}
		if err := config.ValidateToken(tok); err != nil {
			t.Errorf("%s: FUSEBOX_TOKENS entry %d: %v", where, i+1, err)
		}
		f.Tokens = append(f.Tokens, tok)
	}
	f.Tokens = append(f.Tokens, fileTokens...)

	f.RedisURL = env["FUSEBOX_REDIS_URL"]
	if strings.Contains(f.RedisURL, "$(") {
		t.Errorf("%s: FUSEBOX_REDIS_URL %q refers to a variable that is not defined before it", where, f.RedisURL)
	}
	rdb, err := statestore.Dial(f.RedisURL)
	if err != nil {
		t.Errorf("%s: FUSEBOX_REDIS_URL is refused by statestore.Dial: %v", where, err)
	} else {
		_ = rdb.Close()
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Errorf("%s: no checksum/config annotation: a config change would not roll the pods", where)
	}
}

// selects reports which Deployments' pods a selector picks.
func selects(w *world, sel labels.Selector) []string {
	var out []string
	for name, d := range w.Deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func checkService(t *testing.T, w *world, f *facts) {
	t.Helper()
	svc := w.Services[coordinatorName]
	if svc == nil {
		t.Fatalf("no Service %s; rendered: %v", coordinatorName, w.Names)
	}
	f.Service = svc
	if len(svc.Spec.Selector) == 0 {
		t.Fatalf("Service %s selects nothing", svc.Name)
	}
	if got := selects(w, labels.SelectorFromSet(svc.Spec.Selector)); !slices.Equal(got, []string{coordinatorName}) {
		t.Errorf("Service %s selects the pods of %v, want only %s", svc.Name, got, coordinatorName)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: %d ports, want 1", svc.Name, len(svc.Spec.Ports))
	}
	sp := svc.Spec.Ports[0]
	if p, ok := containerPort(f.CoordContainer, sp.TargetPort); !ok || p != coordinatorPort {
		t.Errorf("Service %s: targetPort %s is container port %d, want %d", svc.Name, sp.TargetPort.String(), p, coordinatorPort)
	}
}

func checkPDBs(t *testing.T, w *world, f *facts) {
	t.Helper()
	for name, pdb := range w.PDBs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("PodDisruptionBudget %s: selector %v: %v", name, pdb.Spec.Selector, err)
		}
		if got := selects(w, sel); !slices.Equal(got, []string{coordinatorName}) {
			t.Errorf("PodDisruptionBudget %s covers the pods of %v, want only %s", name, got, coordinatorName)
		}
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: want exactly one of minAvailable and maxUnavailable", name)
		}
	}
}

func checkServiceMonitors(t *testing.T, w *world, f *facts) {
	t.Helper()
	for name, sm := range w.ServiceMonitors {
		where := "ServiceMonitor " + name
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("%s: selector %v: %v", where, sm.Spec.Selector, err)
		}
		// A ServiceMonitor selects Services, by the Service's own labels.
		for sname, svc := range w.Services {
			if got, want := sel.Matches(labels.Set(svc.Labels)), sname == f.Service.Name; got != want {
				t.Errorf("%s: selects Service %s: %v, want %v", where, sname, got, want)
			}
		}
		if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
			t.Errorf("%s: namespaces %v, want [%s]", where, sm.Spec.NamespaceSelector.MatchNames, namespace)
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("%s: %d endpoints, want 1", where, len(sm.Spec.Endpoints))
		}
		ep := sm.Spec.Endpoints[0]
		if !slices.ContainsFunc(f.Service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
			t.Errorf("%s: endpoint port %q is not a port of Service %s", where, ep.Port, f.Service.Name)
		}
		if ep.Path != "/metrics" {
			t.Errorf("%s: path %q, want /metrics", where, ep.Path)
		}
		if a := ep.Authorization; a != nil {
			secret := w.secret(t, where, a.Credentials.Name, a.Credentials.Key)
			if a.Type != "Bearer" || !slices.ContainsFunc(f.Tokens, func(tok config.Token) bool {
				return tok.Secret == secret && tok.Role != config.RoleAgent
			}) {
				t.Errorf("%s: its %s token is not a read or admin token the coordinators accept", where, a.Type)
			}
		}
	}
}

func checkSidecar(t *testing.T, w *world, f *facts, d *appsv1.Deployment, c corev1.Container) sidecarFacts {
	t.Helper()
	where := "Deployment " + d.Name + " container " + c.Name
	env := w.env(t, where, c)
	s := sidecarFacts{Deployment: d, Container: c, Env: env}
	cfgText := w.file(t, where, d.Spec.Template.Spec, c, env["FUSEBOX_AGENT_CONFIG"])
	cfg, err := sidecar.ParseConfig([]byte(cfgText), func(k string) string { return env[k] })
	if err != nil {
		t.Errorf("%s: the sidecar would refuse its config with this env: %v\n%s", where, err, cfgText)
	}
	s.Config = cfg

	tok := env["FUSEBOX_AGENT_TOKEN"]
	if !slices.ContainsFunc(f.Tokens, func(ct config.Token) bool { return ct.Secret == tok && ct.Role == config.RoleAgent }) {
		t.Errorf("%s: FUSEBOX_AGENT_TOKEN is not an agent token the coordinators accept", where)
	}
	u, err := url.Parse(env["FUSEBOX_COORDINATOR_URL"])
	if err != nil {
		t.Fatalf("%s: FUSEBOX_COORDINATOR_URL: %v", where, err)
	}
	wantHost := net.JoinHostPort(f.Service.Name+"."+namespace+".svc", strconv.Itoa(int(f.Service.Spec.Ports[0].Port)))
	if u.Scheme != "http" || u.Host != wantHost {
		t.Errorf("%s: FUSEBOX_COORDINATOR_URL %s, want http://%s (the coordinator Service)", where, u, wantHost)
	}
	if env["FUSEBOX_REDIS_URL"] != f.RedisURL {
		t.Errorf("%s: its Redis is not the coordinators'", where)
	}
	if env["FUSEBOX_PREFIX"] != f.CoordEnv["FUSEBOX_PREFIX"] {
		t.Errorf("%s: FUSEBOX_PREFIX %q, the coordinators' %q", where, env["FUSEBOX_PREFIX"], f.CoordEnv["FUSEBOX_PREFIX"])
	}
	host, port, err := net.SplitHostPort(env["FUSEBOX_AGENT_LISTEN"])
	if err != nil {
		t.Fatalf("%s: FUSEBOX_AGENT_LISTEN: %v", where, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		if c.ReadinessProbe != nil || c.LivenessProbe != nil || len(c.Ports) > 0 {
			t.Errorf("%s: listens on loopback, yet has ports or HTTP probes the kubelet cannot reach", where)
		}
	} else {
		p, _ := strconv.Atoi(port)
		checkProbe(t, where+" readiness", c, c.ReadinessProbe, "/readyz", int32(p))
		checkProbe(t, where+" liveness", c, c.LivenessProbe, "/healthz", int32(p))
	}
	return s
}

// checkNoPlaintextSecrets: no secret (a value of a rendered Secret, or of
// one the values name) appears in a ConfigMap, a plain env value, an
// argument or the notes.
func checkNoPlaintextSecrets(t *testing.T, w *world) {
	t.Helper()
	var secrets []string
	add := func(v string) {
		if len(v) >= 8 {
			secrets = append(secrets, v)
		}
	}
	for _, s := range w.Secrets {
		for _, v := range s.Data {
			add(string(v))
			for part := range strings.SplitSeq(string(v), ",") { // FUSEBOX_TOKENS entries
				if fields := strings.SplitN(part, ":", 3); len(fields) == 3 {
					add(fields[2])
				}
			}
		}
	}
	for _, s := range w.ExternalSecrets {
		for _, v := range s {
			add(v)
		}
	}
	leaks := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a secret in plain text", where)
			}
		}
	}
	for name, cm := range w.ConfigMaps {
		for k, v := range cm.Data {
			leaks("ConfigMap "+name+" key "+k, v)
		}
	}
	for name, d := range w.Deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				leaks("Deployment "+name+" container "+c.Name+" env "+e.Name, e.Value)
			}
			leaks("Deployment "+name+" container "+c.Name+" args", strings.Join(c.Args, " "))
		}
		for k, v := range d.Spec.Template.Annotations {
			leaks("Deployment "+name+" annotation "+k, v)
		}
	}
	leaks("NOTES.txt", w.Notes)
}

// builtImages are the images `make images` builds, from
// scripts/build-images.sh: the names of its last loop, under fusebox/,
// with its default tag.
func builtImages(tb testing.TB) (names []string, tag string) {
	tb.Helper()
	script, err := os.ReadFile("../scripts/build-images.sh")
	if err != nil {
		tb.Fatal(err)
	}
	loops := regexp.MustCompile(`for name in ([a-z ]+); do\n\s*docker build[^\n]*"fusebox/\$name:\$TAG"`).FindSubmatch(script)
	if loops == nil {
		tb.Fatal("scripts/build-images.sh: no `for name in ...; do docker build ... fusebox/$name:$TAG` loop")
	}
	m := regexp.MustCompile(`FUSEBOX_IMAGE_TAG:-([A-Za-z0-9._-]+)`).FindSubmatch(script)
	if m == nil {
		tb.Fatal("scripts/build-images.sh: no default FUSEBOX_IMAGE_TAG")
	}
	return strings.Fields(string(loops[1])), string(m[1])
}
