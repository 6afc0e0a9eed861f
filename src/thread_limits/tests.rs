use super::*;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn past_the_budget_a_thread_is_refused_and_one_ending_makes_room() {
    static TWO: Budget = Budget {
        alive: AtomicUsize::new(0),
        most: OnceLock::new(),
    };
    TWO.most.set(2).expect("set once");
    let (ended_tx, ended) = mpsc::channel();
    let mut go = Vec::new();
    for _ in 0..2 {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let ended_tx = ended_tx.clone();
        let run = move || {
            let _ = go_rx.recv();
            let _ = ended_tx.send(());
        };
        TWO.spawn("budget-test", 64 * 1024, Box::new(run))
            .expect("within the budget");
        go.push(go_tx);
    }
    let refused = TWO.spawn("budget-test", 64 * 1024, Box::new(|| {}));
    assert!(refused.is_err(), "a third thread is past the budget");
    drop(go.pop());
    ended
        .recv_timeout(Duration::from_secs(10))
        .expect("one ended");
    // The ended thread counts itself out as it finishes, just after it says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TWO.alive.load(Ordering::SeqCst) > 1 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let (tx, rx) = mpsc::channel();
    let run = move || {
        let _ = tx.send(());
    };
    TWO.spawn("budget-test", 64 * 1024, Box::new(run))
        .expect("room again");
    rx.recv_timeout(Duration::from_secs(10)).expect("it ran");
}

#[test]
fn the_map_budget_leaves_room_and_counts_four_mappings_a_thread() {
    let max = number("/proc/sys/vm/max_map_count").expect("Linux");
    let budget = map_budget();
    assert!(budget > 0 && budget <= (max - MAPS_KEPT) / MAPS_PER_THREAD);
}

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
