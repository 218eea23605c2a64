package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

// emulateFlags are `lifeboat emulate`'s settings.
type emulateFlags struct {
	listen, logLevel                                        string
	region, zone, instanceType, instanceID, lifecycle, name string
}

// newEmulateCmd is `lifeboat emulate aws|gcp|azure`: one cloud's metadata
// service on --listen until SIGINT or SIGTERM.
func newEmulateCmd() *cobra.Command {
	var f emulateFlags
	cmd := &cobra.Command{
		Use:   "emulate aws|gcp|azure",
		Short: "Serve a faithful cloud metadata service that can be told to issue a notice",
		Long: "Serve one cloud's metadata service (AWS IMDSv2, Compute Engine, Azure IMDS) for one\n" +
			"emulated instance until SIGINT or SIGTERM, and print the environment line that points\n" +
			"an agent (and the cloud's SDK) at it.\n\n" +
			"Control endpoints on the same address (not part of any cloud's API):\n" +
			"  POST /lifeboat/notice  {\"kind\": \"preempt|rebalance|maintenance|terminate\",\n" +
			"                          \"at\": RFC3339 | \"in\": \"2s\", \"deadline_in\": \"120s\"}\n" +
			"  POST /lifeboat/reset\n" +
			"  GET  /lifeboat/state\n",
		Example:   "  lifeboat emulate gcp --listen 127.0.0.1:8169\n  curl -X POST -d '{\"kind\":\"preempt\",\"in\":\"5s\"}' http://127.0.0.1:8169/lifeboat/notice",
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: []string{emulate.AWS, emulate.GCP, emulate.Azure},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(args[0], cmd.Flags())
			if err != nil {
				return err
			}
			return runEmulate(cmd, cfg, f.listen)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:0", "address to serve on (port 0 picks one)")
	fl.StringVar(&f.region, "region", "", "region or Azure location (default us-east-1, us-central1, eastus)")
	fl.StringVar(&f.zone, "zone", "", "zone (default the region's first: us-east-1a, us-central1-a, 1)")
	fl.StringVar(&f.instanceType, "instance-type", "", "instance type, machine type or VM size (default m5.large, e2-standard-2, Standard_D2s_v3)")
	fl.StringVar(&f.instanceID, "instance-id", "", "instance id, numeric id or vmId (default a fixed one)")
	fl.StringVar(&f.lifecycle, "lifecycle", emulate.Spot, "spot|on-demand")
	fl.StringVar(&f.name, "name", "", "VM name (GCP and Azure; default lifeboat-vm)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug|info|warn|error (debug logs every request)")
	return cmd
}

// config is the emulator config the flags describe; a changed region
// moves the default zone with it.
func (f emulateFlags) config(cloud string, fs *pflag.FlagSet) (emulate.Config, error) {
	if cloud != emulate.AWS && cloud != emulate.GCP && cloud != emulate.Azure {
		return emulate.Config{}, fmt.Errorf("%w: cloud %q: want aws, gcp or azure", errUsage, cloud)
	}
	if err := checkListen(f.listen); err != nil {
		return emulate.Config{}, err
	}
	cfg := emulate.DefaultConfig(cloud)
	set := func(flag, v string, field *string) {
		if fs.Changed(flag) {
			*field = v
		}
	}
	set("region", f.region, &cfg.Region)
	if fs.Changed("region") && !fs.Changed("zone") {
		cfg.Zone = emulate.DefaultZone(cloud, cfg.Region)
	}
	set("zone", f.zone, &cfg.Zone)
	set("instance-type", f.instanceType, &cfg.InstanceType)
	set("instance-id", f.instanceID, &cfg.InstanceID)
	set("lifecycle", f.lifecycle, &cfg.Lifecycle)
	set("name", f.name, &cfg.Name)
	log, err := newLogger(f.logLevel, "text")
	if err != nil {
		return emulate.Config{}, err
	}
	cfg.Logger = log
	if err := cfg.Validate(); err != nil {
		return emulate.Config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}

// checkListen rejects an address that is not HOST:PORT before anything
// listens.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("port out of range")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: --listen %q: want HOST:PORT such as 127.0.0.1:8169 (%v)", errUsage, addr, err)
	}
	return nil
}

// runEmulate serves until the command's context ends (SIGINT, SIGTERM).
func runEmulate(cmd *cobra.Command, cfg emulate.Config, listen string) error {
	e, err := emulate.New(cfg)
	if err != nil {
		return err
	}
	url, err := e.Start(listen)
	if err != nil {
		return errors.Join(err, e.Close())
	}
	if _, err := fmt.Fprintln(cmd.OutOrStdout(), emulate.EnvLine(cfg.Cloud, url)); err != nil {
		return errors.Join(err, e.Close())
	}
	cfg.Logger.Info("emulating", "cloud", cfg.Cloud, "url", url, "zone", cfg.Zone, "instance_type", cfg.InstanceType,
		"lifecycle", cfg.Lifecycle, "notice", "POST "+url+"/lifeboat/notice")
	<-cmd.Context().Done()
	cfg.Logger.Info("stopping")
	return e.Close()
}
