package provider_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestAccProvider_logsEffectiveSettings (issue 8.8): the debug line the
// provider logs when configured shows the settings in effect, defaults
// filled in, not the zero values that stand for them.
func TestAccProvider_logsEffectiveSettings(t *testing.T) {
	logs := t.TempDir()
	// The test framework writes the in-process provider's log to a file
	// per test named by TF_LOG_PATH_MASK, at the level of TF_LOG.
	t.Setenv("TF_LOG_PATH_MASK", filepath.Join(logs, "%s.log"))
	t.Setenv("TF_LOG", "DEBUG")
	config := func(body string) string {
		return "provider \"zonegit\" {\n" + body + "\n}\n\ndata \"zonegit_refs\" \"test\" {}\n"
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// No primary URL: Configure runs and logs, then the data
			// source stops.
			{
				Config:      config(""),
				ExpectError: errorLike("Missing primary URL"),
			},
		},
	})
	line := configuredLine(t, logs)
	for _, want := range []string{
		"request_timeout=30s", "concurrency=8", "retry_attempts=4",
		"retry_min_delay=200ms", "retry_max_delay=5s", "user_agent=terraform-provider-zonegit/test",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("the configured-provider log line lacks %s:\n%s", want, line)
		}
	}
}

// TestAccProvider_logsConfiguredSettings: settings given in the
// configuration are logged as given; retry.attempts = 0 logs 0 retries.
func TestAccProvider_logsConfiguredSettings(t *testing.T) {
	logs := t.TempDir()
	t.Setenv("TF_LOG_PATH_MASK", filepath.Join(logs, "%s.log"))
	t.Setenv("TF_LOG", "DEBUG")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: `
provider "zonegit" {
  request_timeout = "45s"
  concurrency     = 3
  retry {
    attempts = 0
  }
}

data "zonegit_refs" "test" {}
`,
				ExpectError: errorLike("Missing primary URL"),
			},
		},
	})
	line := configuredLine(t, logs)
	for _, want := range []string{"request_timeout=45s", "concurrency=3", "retry_attempts=0"} {
		if !strings.Contains(line, want) {
			t.Errorf("the configured-provider log line lacks %s:\n%s", want, line)
		}
	}
}

// configuredLine returns the last "configured zonegit provider" line of
// the test's provider log.
func configuredLine(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, t.Name()+".log"))
	if err != nil {
		t.Fatalf("provider log: %v", err)
	}
	lines := regexp.MustCompile(`(?m)^.*configured zonegit provider.*$`).FindAllString(string(b), -1)
	if len(lines) == 0 {
		t.Fatalf("no \"configured zonegit provider\" line in the provider log (%d bytes)", len(b))
	}
	return lines[len(lines)-1]
}
