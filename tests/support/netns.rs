//! Hosts of a test's own on this machine: network namespaces, each joined by a veth pair to one
//! bridge, with addresses in a /24 of 10.231.0.0/16 that no other harness of this process uses.
//! The bridge has the subnet's `.254`, so the test process reaches every host; a host can be cut
//! off (its link down) and brought back. Everything is removed when the harness is dropped
//! (the processes a test started in a host it stops itself, first). Needs root and `ip`.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A bridge and its hosts.
pub struct Net {
    id: String,
    subnet: u8,
    hosts: usize,
    /// The FORWARD rule that lets bridged traffic through when bridged packets pass iptables
    /// (Docker's FORWARD policy is DROP), to delete again.
    forward_rule: Option<Vec<String>>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) runs the namespaced hosts");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// A bridge with `hosts` hosts.
    pub fn new(hosts: usize) -> Net {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Interface names are at most 15 bytes: `pN<pid%10000><n>` keeps them short and apart.
        let id = format!("{}{}", std::process::id() % 10000, n);
        let subnet = ((std::process::id() as u64 * 7 + n as u64) % 250) as u8;
        let mut net = Net {
            id,
            subnet,
            hosts: 0,
            forward_rule: None,
        };
        let br = net.bridge();
        ip(&["link", "add", &br, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("10.231.{subnet}.254/24"),
            "dev",
            &br,
        ]);
        ip(&["link", "set", &br, "up"]);
        net.allow_forwarding();
        for h in 0..hosts {
            let (ns, outside, inside) = (net.ns(h), net.veth(h), format!("eth{h}"));
            ip(&["netns", "add", &ns]);
            net.hosts = h + 1;
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &ns,
            ]);
            ip(&["link", "set", &outside, "master", &br, "up"]);
            let addr = format!("{}/24", net.addr(h));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inside]);
            ip(&["-n", &ns, "link", "set", &inside, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn bridge(&self) -> String {
        format!("psb{}", self.id)
    }

    fn veth(&self, h: usize) -> String {
        format!("psv{}h{h}", self.id)
    }

    /// The namespace of host `h`.
    pub fn ns(&self, h: usize) -> String {
        format!("ps{}h{h}", self.id)
    }

    /// The address of host `h`.
    pub fn addr(&self, h: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.subnet, h as u8 + 1)
    }

    /// The bridge's address: the test's own, reachable from every host.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.subnet, 254)
    }

    /// `program args…` to run inside host `h`.
    pub fn command(&self, h: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(h), program]);
        c
    }

    /// Cuts host `h` off the bridge (its packets go nowhere, as with a pulled cable).
    pub fn cut(&self, h: usize) {
        ip(&["link", "set", &self.veth(h), "down"]);
    }

    /// Connects host `h` again.
    pub fn reconnect(&self, h: usize) {
        ip(&["link", "set", &self.veth(h), "up"]);
    }

    /// Slows what host `h` sends down to `rate` (`tc` notation, e.g. `800kbit`): a node that
    /// answers, late (a token bucket on its side of the link).
    pub fn throttle(&self, h: usize, rate: &str) {
        let dev = format!("eth{h}");
        let out = self
            .command(h, "tc")
            .args(["qdisc", "add", "dev", &dev, "root", "tbf", "rate", rate])
            .args(["burst", "32kb", "latency", "400ms"])
            .output()
            .expect("tc (iproute2) slows a host's link");
        assert!(
            out.status.success(),
            "tc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Takes a [`Net::throttle`] off again.
    pub fn unthrottle(&self, h: usize) {
        let dev = format!("eth{h}");
        let _ = self
            .command(h, "tc")
            .args(["qdisc", "del", "dev", &dev, "root"])
            .status();
    }

    /// When bridged packets pass iptables (`br_netfilter`), lets this bridge's through.
    fn allow_forwarding(&mut self) {
        let on = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        if !on {
            return;
        }
        let br = self.bridge();
        let rule: Vec<String> = ["FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ok = Command::new("iptables")
            .arg("-I")
            .args(&rule)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "iptables -I {}", rule.join(" "));
        self.forward_rule = Some(rule);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in 0..self.hosts {
            // Deleting the namespace deletes its end of the pair, and so the pair.
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(h)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .status();
        if let Some(rule) = &self.forward_rule {
            let _ = Command::new("iptables").arg("-D").args(rule).status();
        }
    }
}
