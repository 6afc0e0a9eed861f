use super::*;

#[test]
fn the_soft_process_limit_is_read_and_unlimited_is_none() {
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max processes             4096                 96368                processes \n";
    assert_eq!(nproc(limits), Some(4096));
    let unlimited = limits.replace("4096 ", "unlimited ");
    assert_eq!(nproc(&unlimited), None);
    assert_eq!(nproc(""), None);
}

#[test]
fn only_a_real_uid_of_0_is_root() {
    assert!(is_root("Name:\twsauth\nUid:\t0\t0\t0\t0\n"));
    assert!(!is_root("Uid:\t1000\t0\t0\t0\n"));
    assert!(!is_root(""));
}

#[test]
fn the_lowest_pids_max_of_the_cgroup_and_its_ancestors_counts() {
    let root = std::env::temp_dir().join(format!("wsauth-pids-{}", std::process::id()));
    let write = |dir: &str, value: &str| {
        let dir = root.join(dir);
        fs::create_dir_all(&dir).expect("a folder");
        fs::write(dir.join("pids.max"), value).expect("written");
    };
    write("pids", "max\n");
    write("pids/a", "300\n");
    write("pids/a/b", "max\n");
    write("c/d", "40\n");
    let v1 = "9:name=systemd:/\n8:pids:/a/b\n4:memory:/x\n";
    assert_eq!(pids_max(v1, &root), Some(300));
    assert_eq!(pids_max("0::/c/d\n", &root), Some(40));
    assert_eq!(pids_max("8:pids:/\n", &root), None, "max is no limit");
    assert_eq!(pids_max("4:memory:/c/d\n", &root), None);
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn this_machine_has_a_lowest_limit_on_linux() {
    if cfg!(target_os = "linux") {
        let limit = lowest().expect("/proc/sys/kernel/pid_max at least");
        assert!(limit.threads > 0, "{limit:?}");
    }
}
