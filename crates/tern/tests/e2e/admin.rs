//! The directory commands: domains, accounts, aliases; people's output,
//! `--json`, and one-line errors with a non-zero exit.

use crate::harness::*;
use tern_store::prelude::*;
use tern_store::sqlite::{SqliteOptions, SqliteStore};
use tern_store::{Role, Store};

#[test]
fn domains_are_added_listed_and_removed() {
    let t = TestDir::new();
    assert!(t
        .ok(&["domain", "add", "Example.TEST"], "")
        .contains("added domain example.test"));
    t.ok(&["domain", "add", "other.test"], "");
    assert_eq!(t.ok(&["domain", "list"], ""), "example.test\nother.test\n");
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["domain", "list", "--json"], "")).unwrap();
    assert_eq!(json[1]["domain"], "other.test");
    let err = t.fails(&["domain", "add", "example.test"], "");
    assert!(err.contains("already exists"), "{err}");
    let err = t.fails(&["domain", "add", "bad..domain"], "");
    assert!(
        err.starts_with("error:") && err.trim().lines().count() == 1,
        "{err}"
    );
    t.ok(&["domain", "remove", "other.test"], "");
    let err = t.fails(&["domain", "remove", "other.test"], "");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn a_domain_with_accounts_cannot_be_removed() {
    let t = TestDir::new();
    t.add_account("a@example.test");
    let err = t.fails(&["domain", "remove", "example.test"], "");
    assert!(err.contains("remove them first"), "{err}");
}

#[test]
fn accounts_get_mailboxes_roles_and_an_argon2id_hash() {
    let t = TestDir::new();
    t.ok(&["domain", "add", "example.test"], "");
    let out = t.ok(
        &[
            "account",
            "add",
            "Alice@Example.test",
            "--password-stdin",
            "--quota",
            "500M",
        ],
        "s3cret horse\n",
    );
    assert!(out.contains("alice@example.test"), "{out}");
    let list = t.ok(&["account", "list"], "");
    assert!(
        list.contains("alice@example.test") && list.contains("500.0 MiB"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["account", "list", "--json"], "")).unwrap();
    assert_eq!(json[0]["quota_bytes"], 500 << 20);
    assert!(
        json[0].get("password_hash").is_none(),
        "hashes are never printed"
    );

    // Look inside the store the command wrote.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store =
            SqliteStore::open(&t.data_dir().join("tern.db"), SqliteOptions::default()).unwrap();
        let a = store
            .account_by_address("alice@example.test")
            .await
            .unwrap()
            .unwrap();
        assert!(
            a.password_hash.starts_with("$argon2id$"),
            "{}",
            a.password_hash
        );
        assert!(tern_core::password::verify_password(
            "s3cret horse",
            &a.password_hash
        ));
        let boxes = store.list_mailboxes(a.id).await.unwrap();
        for (name, role) in [
            ("INBOX", Role::Inbox),
            ("Sent", Role::Sent),
            ("Drafts", Role::Drafts),
            ("Trash", Role::Trash),
            ("Junk", Role::Junk),
            ("Archive", Role::Archive),
        ] {
            assert!(
                boxes.iter().any(|m| m.name == name && m.role == Some(role)),
                "{name} missing"
            );
        }
        store.close().await.unwrap();
    });
}

#[test]
fn account_errors_are_one_clear_line() {
    let t = TestDir::new();
    let err = t.fails(
        &["account", "add", "a@nowhere.test", "--password-stdin"],
        "pw\n",
    );
    assert!(
        err.contains("domain nowhere.test does not exist") && err.contains("tern domain add"),
        "{err}"
    );
    t.add_account("a@example.test");
    let err = t.fails(
        &["account", "add", "A@example.test", "--password-stdin"],
        "pw\n",
    );
    assert!(err.contains("already exists"), "{err}");
    for bad in [
        "no-at-sign",
        "a@@example.test",
        "a b@example.test",
        "@example.test",
    ] {
        let err = t.fails(&["account", "add", bad, "--password-stdin"], "pw\n");
        assert!(
            err.starts_with("error:") && err.trim().lines().count() == 1,
            "{bad}: {err}"
        );
    }
    let err = t.fails(
        &["account", "add", "b@example.test", "--password-stdin"],
        "\n",
    );
    assert!(err.contains("empty"), "{err}");
    let err = t.fails(
        &[
            "account",
            "add",
            "b@example.test",
            "--password-stdin",
            "--quota",
            "lots",
        ],
        "pw\n",
    );
    assert!(err.contains("invalid size"), "{err}");
    // Without a terminal and without --password-stdin there is nobody to ask.
    let err = t.fails(&["account", "add", "b@example.test"], "");
    assert!(err.contains("--password-stdin"), "{err}");
    let err = t.fails(&["account", "remove", "ghost@example.test"], "");
    assert!(err.contains("does not exist"), "{err}");
    let err = t.fails(
        &[
            "account",
            "passwd",
            "ghost@example.test",
            "--password-stdin",
        ],
        "x\n",
    );
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn passwords_change_and_accounts_are_removed() {
    let t = TestDir::new();
    t.add_account("a@example.test");
    t.ok(
        &["account", "passwd", "a@example.test", "--password-stdin"],
        "new-password\n",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hash = rt.block_on(async {
        let store =
            SqliteStore::open(&t.data_dir().join("tern.db"), SqliteOptions::default()).unwrap();
        let a = store
            .account_by_address("a@example.test")
            .await
            .unwrap()
            .unwrap();
        store.close().await.unwrap();
        a.password_hash
    });
    assert!(tern_core::password::verify_password("new-password", &hash));
    assert!(!tern_core::password::verify_password("secret", &hash));
    assert!(t
        .ok(&["account", "remove", "a@example.test"], "")
        .contains("removed"));
    assert!(t.ok(&["account", "list"], "").contains("no accounts"));
}

#[test]
fn aliases_forward_to_many_targets_and_catch_all() {
    let t = TestDir::new();
    t.add_account("bob@example.test");
    t.ok(
        &[
            "alias",
            "add",
            "Sales@example.test",
            "bob@example.test",
            "partner@remote.test",
        ],
        "",
    );
    t.ok(
        &["alias", "add", "sales@example.test", "carol@remote.test"],
        "",
    );
    t.ok(&["alias", "add", "@example.test", "bob@example.test"], "");
    let list = t.ok(&["alias", "list"], "");
    assert!(
        list.contains(
            "sales@example.test -> bob@example.test, partner@remote.test, carol@remote.test"
        ),
        "{list}"
    );
    assert!(list.contains("@example.test -> bob@example.test"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["alias", "list", "--json"], "")).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let err = t.fails(&["alias", "add", "x@unknown.test", "bob@example.test"], "");
    assert!(err.contains("does not exist"), "{err}");
    let err = t.fails(&["alias", "add", "bob@example.test", "x@remote.test"], "");
    assert!(err.contains("is an account"), "{err}");
    let err = t.fails(&["alias", "add", "y@example.test", "not an address"], "");
    assert!(err.contains("alias target"), "{err}");
    t.ok(&["alias", "remove", "sales@example.test"], "");
    let err = t.fails(&["alias", "remove", "sales@example.test"], "");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn global_options_go_before_or_after_the_command() {
    let t = TestDir::new();
    let config = t.config();
    let config = config.to_str().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = run(
        &["--config", config, "domain", "add", "a.test"],
        "",
        cwd.path(),
    );
    assert!(out.status.success());
    let out = run(
        &["domain", "list", "--config", config, "--json"],
        "",
        cwd.path(),
    );
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["domain"], "a.test");
    let out = run(
        &["--json", "domain", "list", "--config", config],
        "",
        cwd.path(),
    );
    assert!(out.status.success());
}

#[test]
fn weak_passwords_are_refused_unless_allowed() {
    let t = TestDir::new();
    t.ok(&["domain", "add", "example.test"], "");
    for (weak, says) in [
        ("a", "at least 8"),
        ("password", "most common"),
        ("alice@example.test", "account's address"),
        ("12345678", "most common"),
    ] {
        let err = t.fails(
            &["account", "add", "alice@example.test", "--password-stdin"],
            &format!("{weak}\n"),
        );
        assert!(
            err.contains("password refused") && err.contains(says) && err.contains("--allow-weak"),
            "{weak}: {err}"
        );
    }
    assert!(!t.ok(&["account", "list"], "").contains("alice"));
    t.ok(
        &["account", "add", "alice@example.test", "--password-stdin"],
        "gentle-otter-47\n",
    );
    let err = t.fails(
        &[
            "account",
            "passwd",
            "alice@example.test",
            "--password-stdin",
        ],
        "secret\n",
    );
    assert!(err.contains("password refused"), "{err}");
    t.ok(
        &[
            "account",
            "passwd",
            "alice@example.test",
            "--password-stdin",
            "--allow-weak",
        ],
        "secret\n",
    );
}

#[test]
fn aliases_to_nobody_and_alias_loops_are_refused_when_created() {
    let t = TestDir::new();
    t.add_account("alice@example.test");
    t.ok(&["domain", "add", "other.test"], "");
    let err = t.fails(
        &["alias", "add", "sales@example.test", "ghost@example.test"],
        "",
    );
    assert!(err.contains("ghost@example.test does not exist"), "{err}");
    // Remote targets are the remote server's business; extensions reach
    // their account.
    t.ok(
        &[
            "alias",
            "add",
            "sales@example.test",
            "alice+sales@example.test",
            "partner@remote.test",
        ],
        "",
    );
    // A loop: b -> alice, a -> b, then b -> a.
    t.ok(&["alias", "add", "b@other.test", "alice@example.test"], "");
    t.ok(&["alias", "add", "a@other.test", "b@other.test"], "");
    let err = t.fails(&["alias", "add", "b@other.test", "a@other.test"], "");
    assert!(err.contains("loop"), "{err}");
    // A catch-all to a missing address of its own domain would catch itself.
    let err = t.fails(&["alias", "add", "@other.test", "nobody@other.test"], "");
    assert!(err.contains("loop"), "{err}");
    let aliases = t.ok(&["alias", "list"], "");
    assert!(
        !aliases.lines().any(|l| l.starts_with("@other.test")),
        "{aliases}"
    );
}
