use super::*;

#[test]
fn the_pids_max_of_the_own_cgroup_counts_v1_or_v2() {
    let root = std::env::temp_dir().join(format!("wsauth-pids-{}", std::process::id()));
    let write = |dir: &str, value: &str| {
        let dir = root.join(dir);
        fs::create_dir_all(&dir).expect("a folder");
        fs::write(dir.join("pids.max"), value).expect("written");
    };
    write("pids/a/b", "300\n");
    write("pids/max", "max\n");
    write("c/d", "40\n");
    let root_text = root.to_str().expect("a UTF-8 path");
    let v1 = "9:name=systemd:/\n8:pids:/a/b\n4:memory:/x\n";
    assert_eq!(pids_max(v1, root_text), Some(300));
    assert_eq!(pids_max("0::/c/d\n", root_text), Some(40));
    assert_eq!(
        pids_max("8:pids:/max\n", root_text),
        None,
        "max is no limit"
    );
    assert_eq!(pids_max("4:memory:/c/d\n", root_text), None);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn a_number_file_is_read_and_anything_else_is_none() {
    assert!(
        number("/proc/sys/kernel/pid_max").is_some_and(|n| n > 0) || !cfg!(target_os = "linux")
    );
    assert_eq!(number("/proc/self/status"), None);
    assert_eq!(number("/no/such/file"), None);
}
