// SPDX-License-Identifier: GPL-3.0-or-later
//! The Kubernetes deployment (deploy/kubernetes/), no cluster or registry
//! needed: the DaemonSet manifest is well-formed YAML with the fields it
//! must have and exactly the capabilities tests/live_caps.rs shows to be
//! enough (deploy/kubernetes/capabilities.txt); the OCI image that the
//! Containerfile describes is built as an image layout by
//! deploy/kubernetes/build-oci.sh and checked blob by blob.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_osprey");

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Every YAML document of `file`, as JSON (PyYAML, installed by
/// scripts/setup.sh).
fn yaml_docs(file: &Path) -> Vec<Value> {
    let out = run_ok(Command::new("python3").args([
        "-c",
        "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        file.to_str().unwrap(),
    ]));
    serde_json::from_slice(&out).unwrap()
}

fn capabilities_file() -> Vec<String> {
    let mut caps: Vec<String> = std::fs::read_to_string(repo("deploy/kubernetes/capabilities.txt"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    caps.sort();
    caps
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// "64Mi" → bytes.
fn quantity(q: &str) -> u64 {
    let (n, mul) = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1));
    n.parse::<u64>().unwrap_or_else(|e| panic!("{q}: {e}")) * mul
}

#[test]
fn daemonset_manifest_has_what_it_needs_and_least_privilege() {
    let docs = yaml_docs(&repo("deploy/kubernetes/daemonset.yaml"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Namespace", "ServiceAccount", "DaemonSet"]);
    // RBAC only for the Kubernetes API enrichment, which is not built
    assert!(!kinds.iter().any(|k| k.contains("Role")), "{kinds:?}");
    assert_eq!(docs[1]["automountServiceAccountToken"], false);
    let ds = &docs[2];
    assert_eq!(ds["apiVersion"], "apps/v1");
    let spec = &ds["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"],
        spec["template"]["metadata"]["labels"]
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_ne!(pod["hostNetwork"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_ne!(sc["privileged"], true, "privileged is not needed");
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    let mut add = strs(&sc["capabilities"]["add"]);
    add.sort();
    assert_eq!(
        add,
        capabilities_file(),
        "the DaemonSet's capabilities are not the tested ones"
    );
    // resources: requests and limits, request <= limit
    let r = &c["resources"];
    for k in ["cpu", "memory"] {
        assert!(
            r["requests"][k].is_string() && r["limits"][k].is_string(),
            "{r}"
        );
    }
    let (req, lim) = (
        quantity(r["requests"]["memory"].as_str().unwrap()),
        quantity(r["limits"]["memory"].as_str().unwrap()),
    );
    assert!(req <= lim && req >= 32 << 20, "{r}");
    // the node's name through the downward API
    let env = c["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "OSPREY_NODE_NAME"
        && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"));
    // every mount read-only, every volume a host path, each used
    let mounts = c["volumeMounts"].as_array().unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    assert_eq!(mounts.len(), volumes.len());
    for m in mounts {
        assert_eq!(m["readOnly"], true, "{m}");
        let v = volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("{m}"));
        assert!(v["hostPath"]["path"].is_string(), "{v}");
    }
    let mounted = |host: &str| -> String {
        let v = volumes
            .iter()
            .find(|v| v["hostPath"]["path"] == host)
            .unwrap_or_else(|| panic!("no {host} volume"));
        let m = mounts.iter().find(|m| m["name"] == v["name"]).unwrap();
        m["mountPath"].as_str().unwrap().to_string()
    };
    let args = strs(&c["args"]);
    assert!(
        args.contains(&format!("--cgroup-root={}", mounted("/sys/fs/cgroup"))),
        "{args:?}"
    );
    assert!(
        args.contains(&format!("--pods-log-dir={}", mounted("/var/log/pods"))),
        "{args:?}"
    );
    // the kubelet's links sit beside the pods directory, where Osprey looks
    assert_eq!(
        Path::new(&mounted("/var/log/containers")),
        Path::new(&mounted("/var/log/pods"))
            .parent()
            .unwrap()
            .join("containers")
    );
    assert_eq!(mounted("/sys/kernel/tracing"), "/sys/kernel/tracing");
    // the binary takes these arguments
    run_ok(Command::new(BIN).args(&args).args([
        "--synthetic",
        "--synthetic-conns",
        "1",
        "--synthetic-txns",
        "1",
    ]));
    // the image the Containerfile builds runs the binary
    let cf = std::fs::read_to_string(repo("deploy/kubernetes/Containerfile")).unwrap();
    assert!(c["image"].as_str().unwrap().contains("osprey"));
    assert!(cf.lines().any(|l| l.trim() == "FROM scratch"), "{cf}");
    assert!(
        cf.lines().any(|l| l.trim() == r#"ENTRYPOINT ["/osprey"]"#),
        "{cf}"
    );
}

/// sha256 of a file, hex (coreutils).
fn sha256(p: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(p));
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The blob `desc` points to: exists, has the digest and size it says.
fn blob(layout: &Path, desc: &Value) -> PathBuf {
    let digest = desc["digest"].as_str().unwrap();
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{digest}"));
    let p = layout.join("blobs/sha256").join(hex);
    assert!(p.is_file(), "{digest}: no blob");
    assert_eq!(sha256(&p), hex, "{digest}: content does not match");
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        desc["size"].as_u64().unwrap(),
        "{digest}: size"
    );
    p
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Is this ELF file free of a program interpreter (statically linked)?
fn elf_is_static(b: &[u8]) -> bool {
    assert_eq!(&b[..4], b"\x7fELF");
    assert_eq!(b[4], 2, "ELF64 expected");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| u32_at(phoff + i * phentsize) != PT_INTERP)
}

#[test]
fn oci_image_layout_from_scratch_with_the_static_binary() {
    let out = std::env::temp_dir().join(format!("osprey-oci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    run_ok(
        Command::new(repo("deploy/kubernetes/build-oci.sh"))
            .arg(BIN)
            .arg(&out),
    );
    assert_eq!(json(&out.join("oci-layout"))["imageLayoutVersion"], "1.0.0");
    let index = json(&out.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(
        manifests[0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let manifest = json(&blob(&out, &manifests[0]));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = json(&blob(&out, &manifest["config"]));
    let layers = manifest["layers"].as_array().unwrap();
    // FROM scratch: one layer, the COPY
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let layer = blob(&out, &layers[0]);
    assert_eq!(
        strs(&config["rootfs"]["diff_ids"]),
        [layers[0]["digest"].as_str().unwrap()]
    );
    assert_eq!(config["os"], "linux");
    assert!(["amd64", "arm64"].contains(&config["architecture"].as_str().unwrap()));
    assert_eq!(strs(&config["config"]["Entrypoint"]), ["/osprey"]);
    // the layer: exactly /osprey, root's, executable, the binary itself
    let listing = String::from_utf8(run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&layer),
    ))
    .unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    assert!(lines[0].starts_with("-rwxr-xr-x 0/0 "), "{listing}");
    assert!(lines[0].ends_with(" osprey"), "{listing}");
    let inside = run_ok(Command::new("tar").args(["-xOf"]).arg(&layer).arg("osprey"));
    let bin = std::fs::read(BIN).unwrap();
    assert!(inside == bin, "the layer's /osprey is not the built binary");
    // FROM scratch has no libc: the binary must be static
    assert!(
        elf_is_static(&bin),
        "{BIN} has a program interpreter: not static"
    );
    // reproducible: the same layout again
    let again = out.with_extension("again");
    run_ok(
        Command::new(repo("deploy/kubernetes/build-oci.sh"))
            .arg(BIN)
            .arg(&again),
    );
    assert_eq!(json(&again.join("index.json")), index);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&again);
}
