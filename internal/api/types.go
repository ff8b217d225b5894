package api

import (
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// The API's wire types. They are kept apart from the records the store
// keeps and the types other packages hand out, so that those can change
// without breaking a client: each is made from its source in one function
// below (appOf, deploymentOf, …), and that function is where a change in
// the stored form is absorbed. The JSON keys are the API's contract; the
// tests in types_test.go pin them.
//
// App settings stay settings.Settings: they are the API's request type too
// (POST /apps, PATCH …/settings), validated where they are stored.

// App is an app as the API shows it.
type App struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Settings are the ones the next release will be made with, secret
	// values masked.
	Settings settings.Settings `json:"settings"`
	// CurrentRelease is the number of the release taking traffic; 0 before
	// the first successful deployment.
	CurrentRelease int `json:"current_release"`
	// Hosts are the names the app is served at: NAME.<base-domain>, then
	// its custom domains.
	Hosts []string `json:"hosts"`
	// URLs are the app's URLs on the router's listeners: http for each
	// host, then https for each the HTTPS listener has a certificate for.
	URLs      []string   `json:"urls"`
	Instances []Instance `json:"instances"`
	// Deploying is the id of the running deployment, 0 when none runs.
	Deploying int `json:"deploying,omitempty"`
	// Runtime is how the live release runs on this node; left out
	// before the first release, and in the list of apps.
	Runtime *Runtime `json:"runtime,omitempty"`
}

func appOf(a store.App, hosts, urls []string, instances []Instance, deploying int) App {
	return App{Name: a.Name, Created: a.Created, Settings: a.Settings.Masked(), CurrentRelease: a.CurrentRelease,
		Hosts: hosts, URLs: urls, Instances: instances, Deploying: deploying}
}

// Runtime is how a release runs on the node that answers.
type Runtime struct {
	// Stack is java, tomcat or command.
	Stack string `json:"stack"`
	// JavaVersion is the Java version the release asks for, like "17";
	// "" for the node's default java.
	JavaVersion string `json:"java_version,omitempty"`
	// Java is the version of the JDK it runs on here ("17.0.15"), and
	// JavaHome its directory; both left out when not known.
	Java     string `json:"java,omitempty"`
	JavaHome string `json:"java_home,omitempty"`
	// Tomcat is the version of Tomcat a release of the tomcat stack runs
	// on here.
	Tomcat string `json:"tomcat,omitempty"`
	// Problem says what keeps this node from starting the release (a
	// JDK that is not installed), "" when nothing does.
	Problem string `json:"problem,omitempty"`
}

func runtimeOf(r deploy.Runtime) *Runtime {
	out := &Runtime{Stack: r.Stack, JavaVersion: r.JavaVersion, Tomcat: r.Tomcat, Problem: r.Problem}
	if r.JDK != nil {
		out.Java, out.JavaHome = r.JDK.Version, r.JDK.Home
	}
	return out
}

// Instance is one running copy of a release.
type Instance struct {
	ID      string `json:"id"`
	Release int    `json:"release"`
	PID     int    `json:"pid"`
	Port    int    `json:"port"`
	// State is starting, ready, unhealthy, exited or stopping.
	State string `json:"state"`
	// Note says more about the state, like "crash-looping: …".
	Note string `json:"note,omitempty"`
	// Started is when it went into rotation; zero before.
	Started  time.Time `json:"started,omitzero"`
	Restarts int       `json:"restarts"`
	InFlight int64     `json:"in_flight"`
	// Adopted is true for an instance a restarted daemon found running.
	Adopted bool `json:"adopted,omitempty"`
}

func instanceOf(i deploy.InstanceStatus) Instance {
	return Instance{ID: i.ID, Release: i.Release, PID: i.PID, Port: i.Port, State: i.State, Note: i.Note,
		Started: i.Started, Restarts: i.Restarts, InFlight: i.InFlight, Adopted: i.Adopted}
}

// instancesOf converts a list; never nil, so that it shows as [].
func instancesOf(is []deploy.InstanceStatus) []Instance {
	out := make([]Instance, 0, len(is))
	for _, i := range is {
		out = append(out, instanceOf(i))
	}
	return out
}

// Traffic sums up an app's requests of the last minute.
type Traffic struct {
	// Requests is how many requests were answered in the window.
	Requests uint64 `json:"requests"`
	// PerSecond is Requests over the window's length.
	PerSecond float64 `json:"per_second"`
	// ErrorRate is the share of answers with a 5xx status, 0 to 1.
	ErrorRate float64 `json:"error_rate"`
	// P95 is the upper bound of the latency bucket that holds the 95th
	// percentile, in seconds; 0 when there were no requests.
	P95 float64 `json:"p95_seconds"`
}

func trafficOf(r router.Recent) Traffic {
	return Traffic{Requests: r.Requests, PerSecond: r.PerSecond, ErrorRate: r.ErrorRate, P95: r.P95}
}

// Artifact names an uploaded artifact by digest.
type Artifact struct {
	Digest string `json:"digest"`
	// Name is the uploaded file's name.
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Kind is jar, war or zip.
	Kind string `json:"kind"`
}

func artifactOf(a store.ArtifactRef) Artifact {
	return Artifact{Digest: a.Digest, Name: a.Name, Size: a.Size, Kind: a.Kind}
}

// Release is an immutable pair of artifact and settings, numbered v1, v2, …
type Release struct {
	App      string   `json:"app"`
	Number   int      `json:"number"`
	Artifact Artifact `json:"artifact"`
	// Settings are the release's snapshot, secret values masked; the
	// instance count belongs to the app, not to a release.
	Settings settings.Settings `json:"settings"`
	// Stack is the stack the release runs on: java, tomcat or command,
	// from its settings or, when they name none, its artifact.
	Stack      string    `json:"stack"`
	Created    time.Time `json:"created"`
	Author     string    `json:"author,omitempty"`
	Message    string    `json:"message,omitempty"`
	Deployment int       `json:"deployment"`
	// Changes says what this release changed from the one before it, with
	// the values of secrets left out.
	Changes []string `json:"changes,omitempty"`
	// RolledBackFrom is the release this one copies, for a rollback.
	RolledBackFrom int `json:"rolled_back_from,omitempty"`
}

// Version is the release's name as people see it: "v3".
func (r Release) Version() string { return fmt.Sprintf("v%d", r.Number) }

func releaseOf(r store.Release) Release {
	return Release{App: r.App, Number: r.Number, Artifact: artifactOf(r.Artifact), Settings: r.Settings.Masked(),
		Stack: deploy.StackOf(r), Created: r.Created, Author: r.Author, Message: r.Message, Deployment: r.Deployment,
		Changes: r.Changes, RolledBackFrom: r.RolledBackFrom}
}

// Deployment states. The stored states have the same names; deploymentOf
// is where they would be mapped if that ever changed.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Deployment steps, in the order a successful deployment passes them.
const (
	StepReceived   = "received"
	StepStarting   = "starting"
	StepWarmingUp  = "warming up"
	StepSwitched   = "switched"
	StepDraining   = "draining"
	StepOldStopped = "old instances stopped"
	StepSucceeded  = "succeeded"
	StepFailed     = "failed"
)

// Deployment is the act of taking a release live: its steps, its log and
// its outcome.
type Deployment struct {
	App string `json:"app"`
	ID  int    `json:"id"`
	// Kind is deploy, settings, scale, restart, rollback, start, stage (an
	// upload kept for the next restart) or record (a pipeline's report of
	// its run, which took nothing live).
	Kind     string   `json:"kind"`
	Release  int      `json:"release"`
	Artifact Artifact `json:"artifact"`
	// State is one of the State constants.
	State string `json:"state"`
	// Reason says why a deployment failed or was cancelled.
	Reason   string    `json:"reason,omitempty"`
	Author   string    `json:"author,omitempty"`
	Message  string    `json:"message,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Events is the deployment's log; null where a summary leaves it out
	// (an app's status).
	Events []Event `json:"events"`
	// Deployer names the App Service client that asked for it
	// (GITHUB_ONE_DEPLOY, VSTS_ZIP_DEPLOY, …); empty for the native API.
	Deployer string `json:"deployer,omitempty"`
	// ExternalID is the pipeline's own id of a record (kind record).
	ExternalID string `json:"external_id,omitempty"`
}

func deploymentOf(d store.Deployment) Deployment {
	out := Deployment{App: d.App, ID: d.ID, Kind: d.Kind, Release: d.Release, Artifact: artifactOf(d.Artifact),
		State: d.State, Reason: d.Reason, Author: d.Author, Message: d.Message, Started: d.Started, Finished: d.Finished,
		Deployer: d.Deployer, ExternalID: d.ExternalID}
	if d.Events != nil {
		out.Events = make([]Event, 0, len(d.Events))
		for _, e := range d.Events {
			out.Events = append(out.Events, eventOf(e))
		}
	}
	return out
}

func deploymentsOf(ds []store.Deployment) []Deployment {
	out := make([]Deployment, 0, len(ds))
	for _, d := range ds {
		out = append(out, deploymentOf(d))
	}
	return out
}

// Event is one line of a deployment's log. Step is set when the event marks
// the start of a step, empty for progress messages within a step.
type Event struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step,omitempty"`
	Message string    `json:"message"`
}

func eventOf(e store.Event) Event { return Event{At: e.At, Step: e.Step, Message: e.Message} }

// Credential is an app's API token as the API shows it: never the token,
// nor its hash.
type Credential struct {
	ID      string    `json:"id"`
	App     string    `json:"app"`
	Name    string    `json:"name,omitempty"`
	Author  string    `json:"author,omitempty"`
	Created time.Time `json:"created"`
}

func credentialOf(c store.Credential) Credential {
	return Credential{ID: c.ID, App: c.App, Name: c.Name, Author: c.Author, Created: c.Created}
}

// Domain is a custom host name an app is served at.
type Domain struct {
	// Name is lower case; "*.shop.example.com" is a wildcard, for the
	// names one label under shop.example.com.
	Name string `json:"name"`
	App  string `json:"app"`
	// ACME says the name's certificate comes from the daemon's ACME CA.
	ACME    bool      `json:"acme"`
	Created time.Time `json:"created"`
}

func domainOf(d store.Domain) Domain {
	return Domain{Name: d.Name, App: d.App, ACME: d.ACME, Created: d.Created}
}

// domainsOf converts a list; never nil, so that it shows as [].
func domainsOf(ds []store.Domain) []Domain {
	out := make([]Domain, 0, len(ds))
	for _, d := range ds {
		out = append(out, domainOf(d))
	}
	return out
}

// Policy is an app's access restrictions, with the action that applies
// when no rule matches.
type Policy struct {
	// App guards the app's traffic; Deploy its deploy endpoints on the
	// API. Each is [] when empty, ordered by priority.
	App           []Rule `json:"app"`
	Deploy        []Rule `json:"deploy"`
	HTTPSOnly     bool   `json:"https_only"`
	AppDefault    string `json:"app_default"`
	DeployDefault string `json:"deploy_default"`
	// Warning says what in the policy cannot work as meant on this daemon,
	// like https_only without anything that serves HTTPS.
	Warning string `json:"warning,omitempty"`
}

// Rule is one access rule: the lowest priority that matches the client's
// address decides.
type Rule struct {
	Priority int `json:"priority"`
	// Action is allow or deny.
	Action string `json:"action"`
	// Network is a CIDR prefix in canonical form.
	Network string `json:"network"`
	Name    string `json:"name,omitempty"`
}

func policyOf(p access.Policy) Policy {
	return Policy{App: rulesOf(p.App), Deploy: rulesOf(p.Deploy), HTTPSOnly: p.HTTPSOnly,
		AppDefault: p.App.DefaultAction(), DeployDefault: p.Deploy.DefaultAction()}
}

func rulesOf(rs access.Rules) []Rule {
	out := make([]Rule, 0, len(rs))
	for _, r := range rs {
		out = append(out, Rule{Priority: r.Priority, Action: r.Action, Network: r.Network, Name: r.Name})
	}
	return out
}

// Version is the daemon's build and process: GET /api/v1/version.
type Version struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
	// PID is the daemon's process; an upgrade changes it.
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Upgrade is the last upgrade this process tried; absent if none.
	Upgrade *Upgrade `json:"upgrade,omitempty"`
}

// Upgrade states.
const (
	UpgradeRunning   = "running"
	UpgradeSucceeded = "succeeded"
	UpgradeFailed    = "failed"
)

// Upgrade is an upgrade of the daemon to the binary at its path: the
// answer to POST /api/v1/admin/upgrade, and the last one in Version.
type Upgrade struct {
	// State is one of the Upgrade constants.
	State    string    `json:"state"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// PID is the process that started the upgrade; NewPID the one that
	// took over, once it serves.
	PID    int `json:"pid"`
	NewPID int `json:"new_pid,omitempty"`
	// Binary is the file the new process runs.
	Binary string `json:"binary"`
	// Error says why it failed; the old process serves on.
	Error string `json:"error,omitempty"`
}

// Lease is a named lease of an app and who holds it, as the lease
// endpoint and the API show it.
type Lease struct {
	Name string `json:"name"`
	// Holder is the instance that holds it, Release that instance's
	// release.
	Holder  string `json:"holder"`
	Release int    `json:"release"`
	// FencingToken grows with every new holder, so that a job can refuse
	// the work of one that has lost the lease.
	FencingToken int64 `json:"fencing_token"`
	// Expires is when the lease ends unless it is renewed; left out for
	// the single runner, which the platform holds as long as its holder
	// runs.
	Expires time.Time `json:"expires,omitzero"`
	// SingleRunner marks the app's single runner lease (its
	// single_runner option), which the platform holds.
	SingleRunner bool `json:"single_runner,omitempty"`
}

func leaseOf(l store.Lease) Lease {
	return Lease{Name: l.Name, Holder: l.Holder, Release: l.Release, FencingToken: l.Token,
		Expires: l.Expires.UTC(), SingleRunner: l.Runner}
}

// leasesOf converts a list; never nil, so that it shows as [].
func leasesOf(ls []store.Lease) []Lease {
	out := make([]Lease, 0, len(ls))
	for _, l := range ls {
		out = append(out, leaseOf(l))
	}
	return out
}
