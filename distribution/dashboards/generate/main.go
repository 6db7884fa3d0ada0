// Command generate writes Vigil's Grafana dashboards (package dashboards)
// as the JSON files a user imports. `make generate` runs it:
//
//	go run ./distribution/dashboards/generate -dir distribution/dashboards
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigilsec/vigil/distribution/dashboards"
)

func main() {
	dir := flag.String("dir", ".", "directory the dashboards are written to")
	flag.Parse()
	if err := generate(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "generate dashboards:", err)
		os.Exit(1)
	}
}

func generate(dir string) error {
	for _, d := range dashboards.All() {
		data, err := d.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.File), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
