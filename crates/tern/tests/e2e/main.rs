//! End-to-end tests: the real `tern` binary, started on ephemeral ports in
//! a temporary data directory, driven from outside like an administrator
//! and (as protocols arrive) real mail clients would.

mod admin;
mod admission;
mod cluster;
mod config;
mod disk_full;
mod dns_server;
mod harness;
mod imap;
mod imap_diff;
mod imap_scripts;
mod jmap;
mod jmap_mail;
mod jmap_push;
mod jmap_send;
mod milter;
mod mta_sts;
mod mx;
mod outbound;
mod pop3;
mod postfix;
mod sender_auth;
mod serve;
mod smtp;
mod smtp_crash;
mod spam;
mod store_migrate;
mod trace;
mod virus;
mod webmail;
