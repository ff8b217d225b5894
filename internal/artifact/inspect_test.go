package artifact

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// class is the start of a class file whose constant pool names the given
// classes, as javac writes them ("jakarta/servlet/http/HttpServlet").
func class(names ...string) string {
	return "\xca\xfe\xba\xbe\x00\x00\x00\x3d" + strings.Join(names, "\x01\x00\x20")
}

func TestInspect(t *testing.T) {
	s := newStore(t, 1<<20)
	tests := []struct {
		name, file string
		entries    [][2]string
		want       Contents
		boot       bool
	}{
		{"jar", "app.jar", executableJar, Contents{Kind: KindJar, MainClass: "App"}, false},
		{"plain jakarta war", "shop.war", [][2]string{
			{"WEB-INF/web.xml", "<web-app/>"},
			{"WEB-INF/classes/shop/Util.class", class("java/lang/Object")},
			{"WEB-INF/classes/shop/Hello.class", class("jakarta/servlet/http/HttpServlet", "Ljakarta/servlet/http/HttpServletRequest;")},
		}, Contents{Kind: KindWar, ServletAPI: ServletJakarta}, false},
		{"plain javax war", "old.war", [][2]string{
			{"WEB-INF/classes/shop/Hello.class", class("javax/servlet/http/HttpServlet")},
			{"index.jsp", "javax/servlet/ in a page is no class"},
		}, Contents{Kind: KindWar, ServletAPI: ServletJavax}, false},
		{"a war naming both is jakarta", "both.war", [][2]string{
			{"WEB-INF/classes/a/Old.class", class("javax/servlet/Filter")},
			{"WEB-INF/classes/a/New.class", class("jakarta/servlet/Filter")},
		}, Contents{Kind: KindWar, ServletAPI: ServletJakarta}, false},
		{"javax only in a library is not seen", "lib.war", [][2]string{
			{"WEB-INF/lib/old.jar", class("javax/servlet/Filter")},
			{"WEB-INF/classes/a/Model.class", class("java/lang/Object")},
		}, Contents{Kind: KindWar}, false},
		{"spring boot 3 executable war", "boot.war", [][2]string{
			{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.launch.WarLauncher\r\nStart-Class: shop.App\r\n\r\n"},
			{"WEB-INF/classes/shop/App.class", class("jakarta/servlet/Filter")},
			{"WEB-INF/lib-provided/tomcat-embed-core.jar", "x"},
		}, Contents{Kind: KindWar, MainClass: "org.springframework.boot.loader.launch.WarLauncher", ServletAPI: ServletJakarta}, true},
		{"spring boot 2 executable war, the name continued on a second line", "boot2.war", [][2]string{
			{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loa\n der.WarLauncher\n"},
		}, Contents{Kind: KindWar, MainClass: "org.springframework.boot.loader.WarLauncher"}, true},
		{"a Main-Class of another section is not the war's", "section.war", [][2]string{
			{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n\nName: x\nMain-Class: org.springframework.boot.loader.WarLauncher\n"},
		}, Contents{Kind: KindWar}, false},
		{"zip", "site.zip", [][2]string{{"run.sh", "echo"}}, Contents{Kind: KindZip}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := s.Put(bytes.NewReader(zipBytes(t, tt.entries...)), tt.file, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Inspect(ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.SpringBoot() != tt.boot {
				t.Errorf("SpringBoot() = %v, want %v", got.SpringBoot(), tt.boot)
			}
		})
	}
}

// TestInspectIsBounded: a war of classes that inflate to much more than
// the scan reads is looked into only up to its bounds, and a class past
// them says nothing.
func TestInspectIsBounded(t *testing.T) {
	s, err := NewStore(Options{Dir: t.TempDir(), MaxUpload: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("\x00", maxScannedClassBytes+1)
	var entries [][2]string
	for i := range maxScannedBytes/maxScannedClassBytes + 1 {
		entries = append(entries, [2]string{"WEB-INF/classes/f" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".class", filler})
	}
	entries = append(entries, [2]string{"WEB-INF/classes/z/Hello.class", class("javax/servlet/http/HttpServlet")})
	ref, err := s.Put(bytes.NewReader(zipBytes(t, entries...)), "big.war", -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Inspect(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.ServletAPI != "" {
		t.Errorf("the class past the bound was read: servlet API %q", got.ServletAPI)
	}
	// A servlet class at the end of a long class is past its bound too.
	ref, err = s.Put(bytes.NewReader(zipBytes(t, [2]string{"WEB-INF/classes/Long.class", filler + class("javax/servlet/Servlet")})), "long.war", -1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Inspect(ref); err != nil || got.ServletAPI != "" {
		t.Errorf("got %+v, %v; want no servlet API", got, err)
	}
}

func TestPrepareWebapp(t *testing.T) {
	s := newStore(t, 1<<20)
	war, err := s.Put(bytes.NewReader(zipBytes(t, [2]string{"WEB-INF/web.xml", "<web-app/>"}, [2]string{"css/site.css", "body{}"})), "shop-1.0.war", -1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "v1")
	if err := s.Prepare(war, dir, LayoutWebapp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.war")); err != nil {
		t.Errorf("the release has no app.war: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, WebappDir, "css", "site.css")); err != nil || string(b) != "body{}" {
		t.Errorf("ROOT/css/site.css: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, WebappDir, "WEB-INF", "web.xml")); err != nil {
		t.Errorf("the war is not unpacked whole: %v", err)
	}

	// The webapp is unpacked with the checks of any archive.
	slip, err := s.Put(bytes.NewReader(zipBytes(t, [2]string{"WEB-INF/web.xml", "<web-app/>"}, [2]string{"../../evil.jsp", "x"})), "slip.war", -1)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := s.Prepare(slip, filepath.Join(root, "v2"), LayoutWebapp); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("got %v, want ErrUnsafe", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("a refused webapp left %v", entries)
	}

	jar, err := s.Put(bytes.NewReader(zipBytes(t, executableJar...)), "app.jar", -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(jar, filepath.Join(root, "v3"), LayoutWebapp); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a jar laid out as a webapp: got %v, want ErrCorrupt", err)
	}
}
