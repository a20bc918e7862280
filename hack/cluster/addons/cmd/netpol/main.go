// Command netpol enforces Kubernetes NetworkPolicy on the node with iptables and ipset: the
// NetworkPolicy controller of kube-router (what `kube-router --run-firewall=true
// --run-router=false --run-service-proxy=false` runs) and nothing else.
//
// Only that controller is compiled in: the service proxy and the BGP routing controller, where
// kube-router's published advisories are (GHSA-phqm-jgc3-qf8g, GHSA-v5mh-h5hx-7v92), are not
// part of this binary, and neither is upstream main's pprof listener on 0.0.0.0:6060. Health is
// served on 127.0.0.1 only (upstream's health server binds every address).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "netpol: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	klog.InitFlags(nil)
	config := options.NewKubeRouterConfig()
	healthAddr := "127.0.0.1:20244"
	fs := pflag.NewFlagSet("netpol", pflag.ExitOnError)
	fs.StringVar(&config.Kubeconfig, "kubeconfig", "", "kubeconfig of the controller's client certificate")
	fs.StringVar(&config.HostnameOverride, "hostname-override", "", "name of this node's Node object")
	fs.StringSliceVar(&config.ClusterIPCIDRs, "service-cluster-ip-range", []string{"10.96.0.0/12"},
		"Service ClusterIP range (traffic to it is left to kube-proxy)")
	fs.StringVar(&config.NodePortRange, "service-node-port-range", "30000-32767", "NodePort range")
	fs.DurationVar(&config.IPTablesSyncPeriod, "iptables-sync-period", 5*time.Minute,
		"period of the full resync (every change of a pod, namespace or policy also syncs)")
	fs.StringVar(&healthAddr, "health-addr", healthAddr, "address of the /healthz endpoint")
	fs.StringVar(&config.VLevel, "v", "0", "log level")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := flag.Set("v", config.VLevel); err != nil {
		return err
	}
	config.EnableIPv4 = true
	config.EnableIPv6 = false
	config.RunFirewall = true
	config.MetricsEnabled = false
	if os.Geteuid() != 0 {
		return errors.New("needs root: it runs iptables and ipset")
	}

	restConfig, err := clientcmd.BuildConfigFromFlags("", config.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}

	stopCh := make(chan struct{})
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	nsInformer := factory.Core().V1().Namespaces().Informer()
	npInformer := factory.Networking().V1().NetworkPolicies().Informer()
	factory.Start(stopCh)
	syncCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer cache for %v did not sync within a minute", typ)
		}
	}

	iptablesHandlers, ipsetHandlers, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		return err
	}
	var ipsetMutex sync.Mutex
	npc, err := netpol.NewNetworkPolicyController(client, config, podInformer, npInformer, nsInformer,
		&ipsetMutex, iptablesHandlers, ipsetHandlers)
	if err != nil {
		return fmt.Errorf("network policy controller: %w", err)
	}
	for _, add := range []func() error{
		func() error { _, err := podInformer.AddEventHandler(npc.PodEventHandler); return err },
		func() error { _, err := nsInformer.AddEventHandler(npc.NamespaceEventHandler); return err },
		func() error { _, err := npInformer.AddEventHandler(npc.NetworkPolicyEventHandler); return err },
	} {
		if err := add(); err != nil {
			return err
		}
	}

	// Healthy once a full sync has completed and while syncs keep completing (each sends a heartbeat).
	var lastBeat atomic.Int64
	healthChan := make(chan *healthcheck.ControllerHeartbeat, 10)
	go func() {
		for beat := range healthChan {
			lastBeat.Store(beat.LastHeartBeat.Unix())
		}
	}()
	maxAge := 2*config.IPTablesSyncPeriod + time.Minute
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		last := lastBeat.Load()
		if last == 0 || time.Since(time.Unix(last, 0)) > maxAge {
			http.Error(w, "no completed NetworkPolicy sync", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	server := &http.Server{Addr: healthAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.Fatalf("health endpoint %s: %v", healthAddr, err)
		}
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go npc.Run(healthChan, stopCh, &wg)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	klog.Info("stopping the NetworkPolicy controller")
	close(stopCh)
	wg.Wait()
	_ = server.Close()
	return nil
}
