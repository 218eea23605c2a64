package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// errUsage marks errors in what the user typed; main prints them with a
// hint and exits 2.
var errUsage = errors.New("usage")

// envName is the variable that sets a flag: LIFEBOAT_<FLAG_NAME>.
func envName(flag string) string {
	return "LIFEBOAT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applySources fills every flag the command line did not set from, in
// order, the environment (LIFEBOAT_<FLAG>) and the YAML file named by
// --config (same keys as the flags). Unknown keys in the file and values
// that do not parse are errors that name the key and where it came from.
func applySources(cmd *cobra.Command, getenv func(string) string) error {
	fs := cmd.Flags()
	file := fs.Lookup("config").Value.String()
	if !fs.Changed("config") {
		if v := getenv(envName("config")); v != "" {
			file = v
		}
	}
	fromFile, err := readConfigFile(file, fs)
	if err != nil {
		return err
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s=%q: %v", errUsage, envName(f.Name), v, err))
			}
			return
		}
		if v, ok := fromFile[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: key %q: %v", errUsage, file, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// readConfigFile parses the YAML config into flag-name → value strings.
func readConfigFile(path string, fs *pflag.FlagSet) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --config: %v", errUsage, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s is not valid YAML: %v", errUsage, path, err)
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range doc {
		if fs.Lookup(k) == nil || k == "config" || k == "help" {
			unknown = append(unknown, k)
			continue
		}
		s, err := yamlScalar(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %q: %v", errUsage, path, k, err)
		}
		out[k] = s
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: %s: unknown key(s) %s (keys are the agent's flag names, e.g. data-dir, bootstrap-expect)",
			errUsage, path, strings.Join(unknown, ", "))
	}
	return out, nil
}

// yamlScalar turns a YAML value into the string a flag parses; a list
// becomes a comma-separated value.
func yamlScalar(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			s, err := yamlScalar(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("a map is not a valid value here")
	default:
		return fmt.Sprint(t), nil
	}
}
