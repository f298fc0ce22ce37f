package deploy_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fusebox-io/fusebox/config"
)

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	if i < 0 {
		return corev1.EnvVar{}, false
	}
	return c.Env[i], true
}

func TestChart_Defaults(t *testing.T) {
	o := render(t, "")
	f := checkWorld(t, &world{objects: o})

	t.Run("renders the coordinators and nothing optional", func(t *testing.T) {
		got := slices.Sorted(slices.Values(o.Names))
		want := []string{
			"ConfigMap/" + coordinatorName,
			"Deployment/" + coordinatorName,
			"PodDisruptionBudget/" + coordinatorName,
			"Secret/" + release + "-fusebox-redis",
			"Secret/" + release + "-fusebox-tokens",
			"Service/" + coordinatorName,
		}
		if !slices.Equal(got, want) {
			t.Errorf("rendered %v\nwant     %v", got, want)
		}
	})
	t.Run("runs two coordinators, one of which a disruption must leave", func(t *testing.T) {
		if r := f.Coordinator.Spec.Replicas; r == nil || *r != 2 {
			t.Errorf("replicas %v, want 2", r)
		}
		pdb := o.PDBs[coordinatorName]
		if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
			t.Errorf("minAvailable %v, want 1", pdb.Spec.MinAvailable)
		}
		if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
			t.Errorf("unhealthyPodEvictionPolicy %v, want AlwaysAllow (a Redis outage makes every pod unready; drains must not stall)", p)
		}
	})
	t.Run("runs the image make images builds", func(t *testing.T) {
		names, tag := builtImages(t)
		if !slices.Contains(names, "coordinator") {
			t.Fatalf("scripts/build-images.sh builds %v, no coordinator", names)
		}
		c := f.CoordContainer
		if want := "fusebox/coordinator:" + tag; c.Image != want {
			t.Errorf("image %s, want %s", c.Image, want)
		}
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("pull policy %s, want IfNotPresent (a local image cannot be pulled)", c.ImagePullPolicy)
		}
	})
	t.Run("generates three tokens of 40 characters, one per role", func(t *testing.T) {
		roles := map[config.Role]string{}
		for _, tok := range f.Tokens {
			if len(tok.Secret) != 40 {
				t.Errorf("token %s: %d characters, want 40", tok.Name, len(tok.Secret))
			}
			roles[tok.Role] = tok.Name
		}
		if len(f.Tokens) != 3 || roles[config.RoleAdmin] != "ops" || roles[config.RoleAgent] != "agents" || roles[config.RoleRead] != "grafana" {
			t.Errorf("tokens %v, want ops (admin), agents (agent), grafana (read)", roles)
		}
		s := o.Secrets[release+"-fusebox-tokens"]
		for _, tok := range f.Tokens {
			if string(s.Data["token-"+tok.Name]) != tok.Secret {
				t.Errorf("key token-%s is not the secret of token %s", tok.Name, tok.Name)
			}
		}
	})
	t.Run("keeps the Redis URL in a Secret", func(t *testing.T) {
		if f.RedisURL != "redis://redis:6379" {
			t.Errorf("FUSEBOX_REDIS_URL %q", f.RedisURL)
		}
		e, _ := env(f.CoordContainer, "FUSEBOX_REDIS_URL")
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != release+"-fusebox-redis" {
			t.Errorf("FUSEBOX_REDIS_URL comes from %+v, want Secret %s-fusebox-redis", e, release)
		}
	})
	t.Run("mounts the default policy file", func(t *testing.T) {
		want, err := os.ReadFile(chartDir + "/files/fusebox.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(f.ConfigText) != strings.TrimSpace(string(want)) {
			t.Errorf("config file:\n%s\nwant files/fusebox.yaml:\n%s", f.ConfigText, want)
		}
		if !f.CoordConfig.MetricsArePublic() || len(f.CoordConfig.Canaries) != 0 {
			t.Errorf("default config: metrics public %v, canaries %d; want public, none", f.CoordConfig.MetricsArePublic(), len(f.CoordConfig.Canaries))
		}
	})
	t.Run("tells how to reach it", func(t *testing.T) {
		for _, want := range []string{"svc/" + coordinatorName, "http://" + coordinatorName + "." + namespace + ".svc:8080"} {
			if !strings.Contains(o.Notes, want) {
				t.Errorf("NOTES.txt lacks %q:\n%s", want, o.Notes)
			}
		}
	})
}

// sidecarValues turn the sidecar on; its section is last, so that a test
// may append to it.
const sidecarValues = `
apiKeys:
  values:
    OPENAI_API_KEY: sk-test-openai-0123456789
    ANTHROPIC_API_KEY: sk-ant-test-0123456789
sidecar:
  enabled: true
`

func TestChart_Sidecar(t *testing.T) {
	o := render(t, sidecarValues)
	f := checkWorld(t, &world{objects: o})
	app := release + "-fusebox-example-app"

	if len(f.Sidecars) != 1 || f.Sidecars[0].Deployment.Name != app {
		t.Fatalf("sidecars in %v, want one in Deployment %s", f.Sidecars, app)
	}
	s := f.Sidecars[0]
	t.Run("runs the app beside the agent image", func(t *testing.T) {
		names, tag := builtImages(t)
		if !slices.Contains(names, "agent") || s.Container.Image != "fusebox/agent:"+tag {
			t.Errorf("sidecar image %s; make images builds %v:%s", s.Container.Image, names, tag)
		}
		cs := s.Deployment.Spec.Template.Spec.Containers
		if len(cs) != 2 || cs[0].Name != "app" {
			t.Fatalf("containers %d, want app and fusebox-sidecar", len(cs))
		}
		if got := (&world{objects: o}).env(t, "app", cs[0])["OPENAI_BASE_URL"]; got != "http://127.0.0.1:8787/v1" {
			t.Errorf("the app's OPENAI_BASE_URL %q, want the sidecar's http://127.0.0.1:8787/v1", got)
		}
	})
	t.Run("sets the agent's environment", func(t *testing.T) {
		want := map[string]string{
			"FUSEBOX_AGENT_LISTEN":    "127.0.0.1:8787",
			"FUSEBOX_AGENT_CONFIG":    "/etc/fusebox/sidecar.yaml",
			"FUSEBOX_COORDINATOR_URL": "http://" + coordinatorName + "." + namespace + ".svc:8080",
			"FUSEBOX_REDIS_URL":       "redis://redis:6379",
			"OPENAI_API_KEY":          "sk-test-openai-0123456789",
			"ANTHROPIC_API_KEY":       "sk-ant-test-0123456789",
			"FUSEBOX_AGENT_ID":        "<metadata.name>",
		}
		for k, v := range want {
			if s.Env[k] != v {
				t.Errorf("%s = %q, want %q", k, s.Env[k], v)
			}
		}
		e, _ := env(s.Container, "FUSEBOX_AGENT_TOKEN")
		if ref := e.ValueFrom.SecretKeyRef; ref.Name != release+"-fusebox-tokens" || ref.Key != "token-agents" {
			t.Errorf("FUSEBOX_AGENT_TOKEN from %s/%s, want %s-fusebox-tokens/token-agents", ref.Name, ref.Key, release)
		}
	})
	t.Run("routes chat through OpenAI, then Anthropic", func(t *testing.T) {
		if s.Config == nil || len(s.Config.Routes) != 1 {
			t.Fatalf("config %+v, want one route", s.Config)
		}
		var chain []string
		for _, p := range s.Config.Routes[0].Chain {
			chain = append(chain, p.Name)
		}
		if !slices.Equal(chain, []string{"openai", "anthropic"}) {
			t.Errorf("chain %v, want [openai anthropic]", chain)
		}
	})
	t.Run("gives the coordinators the same API keys for their canaries", func(t *testing.T) {
		if f.CoordEnv["OPENAI_API_KEY"] != "sk-test-openai-0123456789" {
			t.Errorf("coordinator OPENAI_API_KEY %q", f.CoordEnv["OPENAI_API_KEY"])
		}
	})
	t.Run("probes it when it listens on the pod's address", func(t *testing.T) {
		o := render(t, sidecarValues+"  listen: 0.0.0.0:9797\n")
		f := checkWorld(t, &world{objects: o}) // checks the probes' paths and ports
		if c := f.Sidecars[0].Container; len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9797 {
			t.Errorf("ports %+v, want 9797", c.Ports)
		}
	})
}

func TestChart_ServiceMonitor(t *testing.T) {
	t.Run("scrapes the coordinator Service", func(t *testing.T) {
		o := render(t, "serviceMonitor:\n  enabled: true\n  labels: {release: kube-prometheus-stack}\n")
		checkWorld(t, &world{objects: o}) // selector, port, path, namespace
		sm := o.ServiceMonitors[coordinatorName]
		if sm == nil {
			t.Fatalf("no ServiceMonitor %s; rendered %v", coordinatorName, o.Names)
		}
		if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Labels["release"] != "kube-prometheus-stack" {
			t.Errorf("apiVersion %s, labels %v", sm.APIVersion, sm.Labels)
		}
		if ep := sm.Spec.Endpoints[0]; ep.Interval != "30s" || ep.Authorization != nil {
			t.Errorf("endpoint %+v, want every 30s without a token (metrics are public)", ep)
		}
	})
	t.Run("sends a read token when metrics are not public", func(t *testing.T) {
		o := render(t, `
serviceMonitor:
  enabled: true
  bearerToken: {tokenName: grafana}
coordinator:
  config:
    auth: {metrics_public: false}
`)
		f := checkWorld(t, &world{objects: o}) // the token is a read token the coordinators accept
		if f.CoordConfig.MetricsArePublic() {
			t.Error("metrics are public")
		}
		a := o.ServiceMonitors[coordinatorName].Spec.Endpoints[0].Authorization
		if a == nil || a.Credentials.Name != release+"-fusebox-tokens" || a.Credentials.Key != "token-grafana" {
			t.Errorf("authorization %+v, want the grafana token", a)
		}
	})
}

// TestChart_ExistingSecrets runs the chart on Secrets and ConfigMaps the
// cluster already holds, with examples/fusebox.yaml as the policy file.
func TestChart_ExistingSecrets(t *testing.T) {
	policies, err := os.ReadFile("../examples/fusebox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		objects: render(t, `
redis: {existingSecret: redis-conn, existingSecretKey: url}
auth: {existingSecret: fusebox-tokens, tokensKey: tokens}
apiKeys:
  existingSecret: llm-keys
  fromSecrets:
    - {name: OPENAI_API_KEY, secretName: openai, key: api-key}
coordinator:
  existingConfigMap: fusebox-policies
  extraEnv:
    - name: FUSEBOX_ADMIN_TOKEN
      valueFrom: {secretKeyRef: {name: fusebox-file-tokens, key: admin}}
    - name: FUSEBOX_AGENT_TOKEN
      valueFrom: {secretKeyRef: {name: fusebox-file-tokens, key: agent}}
    - name: FUSEBOX_READ_TOKEN
      valueFrom: {secretKeyRef: {name: fusebox-file-tokens, key: read}}
sidecar:
  enabled: true
  token: {secretName: fusebox-agent, key: token}
`),
		ExternalSecrets: map[string]map[string]string{
			"redis-conn":          {"url": "rediss://:conn-pass-0123456789@redis.db.svc:6380/1"},
			"fusebox-tokens":      {"tokens": "ops:admin:ops-secret-0123456789,app:agent:app-secret-0123456789"},
			"fusebox-agent":       {"token": "app-secret-0123456789"},
			"fusebox-file-tokens": {"admin": "file-admin-0123456789", "agent": "file-agent-0123456789", "read": "file-read-0123456789"},
			"llm-keys":            {"ANTHROPIC_API_KEY": "sk-ant-0123456789", "SEARCH_HEALTH_TOKEN": "search-0123456789"},
			"openai":              {"api-key": "sk-openai-0123456789"},
		},
		ExternalConfigMaps: map[string]map[string]string{"fusebox-policies": {"fusebox.yaml": string(policies)}},
	}
	f := checkWorld(t, w) // every reference resolves to these, and examples/fusebox.yaml starts

	t.Run("makes no Secret and no policy ConfigMap of its own", func(t *testing.T) {
		if len(w.Secrets) != 0 {
			t.Errorf("rendered Secrets %v", slices.Collect(maps.Keys(w.Secrets)))
		}
		if _, ok := w.ConfigMaps[coordinatorName]; ok {
			t.Error("rendered the policy ConfigMap although coordinator.existingConfigMap is set")
		}
	})
	t.Run("reads every token and key from them", func(t *testing.T) {
		if f.RedisURL != "rediss://:conn-pass-0123456789@redis.db.svc:6380/1" {
			t.Errorf("FUSEBOX_REDIS_URL %q", f.RedisURL)
		}
		if len(f.Tokens) != 2 { // from FUSEBOX_TOKENS; the example file names none (--dev makes its own)
			t.Errorf("tokens %d, want 2", len(f.Tokens))
		}
		if len(f.CoordConfig.Canaries) != 4 {
			t.Errorf("canaries %d, want examples/fusebox.yaml's 4", len(f.CoordConfig.Canaries))
		}
		if s := f.Sidecars[0].Env; s["FUSEBOX_AGENT_TOKEN"] != "app-secret-0123456789" || s["OPENAI_API_KEY"] != "sk-openai-0123456789" || s["ANTHROPIC_API_KEY"] != "sk-ant-0123456789" {
			t.Errorf("sidecar env: token %q, OpenAI %q, Anthropic %q", s["FUSEBOX_AGENT_TOKEN"], s["OPENAI_API_KEY"], s["ANTHROPIC_API_KEY"])
		}
	})
}

// TestChart_RedisURL renders each URL form with its password from a
// Secret, and checks the URL the container sees after the kubelet's
// $(VAR) expansion is the one go-redis reads as meant.
func TestChart_RedisURL(t *testing.T) {
	const pass, sentinelPass = "redis-pass-0123456789", "sentinel-pass-0123456789"
	external := map[string]map[string]string{
		"redis-auth":    {"password": pass},
		"sentinel-auth": {"password": sentinelPass},
	}
	for _, tc := range []struct {
		name, values string
		check        func(t *testing.T, u string)
	}{
		{
			name: "sentinel: the password goes to ?password=, the sentinels' into user:pass",
			values: `
redis:
  url: redis+sentinel://sentinel-0.sentinel:26379?master_name=mymaster&addr=sentinel-1.sentinel:26379&addr=sentinel-2.sentinel:26379
  password: {existingSecret: redis-auth, key: password}
  sentinelPassword: {existingSecret: sentinel-auth, key: password}
`,
			check: func(t *testing.T, u string) {
				o, err := redis.ParseFailoverURL(strings.Replace(u, "+sentinel", "", 1))
				if err != nil {
					t.Fatal(err)
				}
				if o.MasterName != "mymaster" || o.Password != pass || o.SentinelPassword != sentinelPass || len(o.SentinelAddrs) != 3 {
					t.Errorf("master %q, password %q, sentinel password %q, sentinels %v", o.MasterName, o.Password, o.SentinelPassword, o.SentinelAddrs)
				}
			},
		},
		{
			name: "sentinel without a sentinel password",
			values: `
redis:
  url: redis+sentinel://sentinel:26379?master_name=mymaster
  password: {existingSecret: redis-auth, key: password}
`,
			check: func(t *testing.T, u string) {
				o, err := redis.ParseFailoverURL(strings.Replace(u, "+sentinel", "", 1))
				if err != nil {
					t.Fatal(err)
				}
				if o.Password != pass || o.SentinelPassword != "" {
					t.Errorf("password %q, sentinel password %q", o.Password, o.SentinelPassword)
				}
			},
		},
		{
			name:   "redis: the password goes after the scheme",
			values: "redis:\n  url: redis://redis-master.db:6379/2\n  password: {existingSecret: redis-auth, key: password}\n",
			check: func(t *testing.T, u string) {
				o, err := redis.ParseURL(u)
				if err != nil {
					t.Fatal(err)
				}
				if o.Password != pass || o.DB != 2 || o.Addr != "redis-master.db:6379" {
					t.Errorf("password %q, db %d, addr %s", o.Password, o.DB, o.Addr)
				}
			},
		},
		{
			name:   "redis: a user and the placeholder where the URL puts it",
			values: "redis:\n  url: rediss://fusebox:$(FUSEBOX_REDIS_PASSWORD)@redis:6380\n  password: {existingSecret: redis-auth, key: password}\n",
			check: func(t *testing.T, u string) {
				o, err := redis.ParseURL(u)
				if err != nil {
					t.Fatal(err)
				}
				if o.Username != "fusebox" || o.Password != pass || o.TLSConfig == nil {
					t.Errorf("user %q, password %q, TLS %v", o.Username, o.Password, o.TLSConfig != nil)
				}
			},
		},
		{
			name:   "cluster: the password goes after the scheme",
			values: "redis:\n  url: redis+cluster://node-0:6379?addr=node-1:6379&addr=node-2:6379\n  password: {existingSecret: redis-auth, key: password}\n",
			check: func(t *testing.T, u string) {
				o, err := redis.ParseClusterURL(strings.Replace(u, "+cluster", "", 1))
				if err != nil {
					t.Fatal(err)
				}
				if o.Password != pass || len(o.Addrs) != 3 {
					t.Errorf("password %q, nodes %v", o.Password, o.Addrs)
				}
			},
		},
		{
			name:   "a URL with its password in the values is kept in a Secret",
			values: "redis:\n  url: redis://:inline-pass-0123456789@redis:6379\n",
			check: func(t *testing.T, u string) {
				if o, err := redis.ParseURL(u); err != nil || o.Password != "inline-pass-0123456789" {
					t.Errorf("password %v, %v", o, err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{objects: render(t, sidecarValues+tc.values), ExternalSecrets: external}
			f := checkWorld(t, w) // statestore.Dial accepts it; no password in a plain value; the sidecar's is the same
			tc.check(t, f.RedisURL)
		})
	}
}

func TestChart_Refuses(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		{"a literal token in the policy file", "coordinator:\n  config:\n    auth:\n      tokens: [{name: ops, role: admin, token: literal-secret-0123456789}]\n", "a literal token"},
		{"a token_env the pods do not set", "coordinator:\n  config:\n    auth:\n      tokens: [{name: ops, role: admin, token_env: OPS_TOKEN}]\n", "OPS_TOKEN (token_env)"},
		{"a canary whose API key is not given", "coordinator:\n  config:\n    breakers:\n      openai:\n        canary: {kind: openai, api_key_env: OPENAI_API_KEY, model: gpt-4o-mini}\n", "a canary in coordinator.config names OPENAI_API_KEY"},
		{"a sidecar whose providers' keys are not given", "sidecar: {enabled: true}\n", "a provider in sidecar.config names ANTHROPIC_API_KEY"},
		{"a sidecar token that is not an agent's", sidecarValues + "  token: {tokenName: grafana}\n", "needs an agent token"},
		{"a sidecar without a token beside existing tokens", "auth: {existingSecret: mine}\n" + sidecarValues, "sidecar.token.secretName"},
		{"a PDB that blocks every drain", "coordinator: {replicas: 1}\n", "would block every drain"},
		{"a short token", "auth:\n  tokens: [{name: ops, role: admin, secret: short}]\n", "shorter than 16"},
		{"no token at all", "auth: {tokens: []}\n", "auth.tokens is empty"},
		{"private metrics without a scrape token", "serviceMonitor: {enabled: true}\ncoordinator:\n  config: {auth: {metrics_public: false}}\n", "metrics_public: false"},
		{"a password given twice", "redis:\n  url: redis://u:p@redis:6379\n  password: {existingSecret: s, key: k}\n", "has a user:pass already"},
		{"a URL that is not Redis's", "redis: {url: 'http://redis:6379'}\n", "at '/redis/url'"},
		{"a misspelt value", "coordinator: {replica: 3}\n", "additional properties 'replica' not allowed"},
		{"a policy file that is not YAML", "coordinator:\n  configYaml: \"defaults: [\"\n", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := renderErr(t, tc.values); !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestChart_SidecarInAppChart renders testdata/appchart, an app's chart
// with fusebox as a dependency that puts the sidecar in its own pods as
// deploy/helm/fusebox/README.md shows.
func TestChart_SidecarInAppChart(t *testing.T) {
	app, err := loader.Load("testdata/appchart")
	if err != nil {
		t.Fatal(err)
	}
	app.AddDependency(loadChart(t))
	files, err := renderChart(app, "")
	if err != nil {
		t.Fatal(err)
	}
	o := decodeAll(t, files)
	f := checkWorld(t, &world{objects: o})

	if len(f.Sidecars) != 1 || f.Sidecars[0].Deployment.Name != release+"-myapp" {
		t.Fatalf("sidecars %v, want one in %s-myapp", f.Sidecars, release)
	}
	t.Run("is the example app's sidecar", func(t *testing.T) {
		alone := checkWorld(t, &world{objects: render(t, sidecarValues)})
		got, want := f.Sidecars[0].Container, alone.Sidecars[0].Container
		if !equalJSON(t, got, want) {
			t.Errorf("the sidecar in the app chart differs from the example app's")
		}
	})
	t.Run("is the snippet the README shows", func(t *testing.T) {
		readme, err := os.ReadFile(chartDir + "/README.md")
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := os.ReadFile("testdata/appchart/templates/deployment.yaml")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range strings.Lines(string(tpl)) {
			if strings.Contains(line, `include "fusebox.`) {
				n++
				if !strings.Contains(string(readme), strings.TrimRight(line, "\n")) {
					t.Errorf("README.md lacks the line\n%s", line)
				}
			}
		}
		if n != 2 {
			t.Errorf("testdata/appchart includes %d fusebox templates, want 2 (container and volumes)", n)
		}
	})
}
