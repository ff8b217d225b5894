package scm

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
)

// Profile is what a publish profile says: where a pipeline deploys an
// app, and as whom.
type Profile struct {
	App string
	// SiteURL is the app's SCM site, absolute (see Site.URL).
	SiteURL string
	// Password is a deploy credential's token; the user is $APP.
	Password string
	// AppURL is where the app is served, shown by the pipeline.
	AppURL string
}

// PublishProfile renders p as the .PublishSettings file the App Service
// portal downloads and the GitHub Action azure/webapps-deploy reads: the
// first publishProfile's publishUrl (no scheme: the Action prepends
// https://, and refuses one without "scm"), userName, userPWD and
// destinationAppUrl.
func PublishProfile(p Profile) ([]byte, error) {
	u, err := url.Parse(p.SiteURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("the SCM site's URL %q is not an absolute URL", p.SiteURL)
	}
	type profile struct {
		Name              string `xml:"profileName,attr"`
		Method            string `xml:"publishMethod,attr"`
		PublishURL        string `xml:"publishUrl,attr"`
		User              string `xml:"userName,attr"`
		Password          string `xml:"userPWD,attr"`
		DestinationAppURL string `xml:"destinationAppUrl,attr"`
	}
	doc := struct {
		XMLName  xml.Name  `xml:"publishData"`
		Profiles []profile `xml:"publishProfile"`
	}{Profiles: []profile{{Name: p.App + " - Zip Deploy", Method: "ZipDeploy",
		PublishURL: u.Host + strings.TrimRight(u.EscapedPath(), "/"), User: "$" + p.App, Password: p.Password,
		DestinationAppURL: p.AppURL}}}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(append([]byte(xml.Header), b...), '\n'), nil
}
