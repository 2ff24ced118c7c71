//! A throwaway PostgreSQL cluster that speaks TLS only, for the TLS tests: one per test process,
//! started on first use, stopped when the process exits (same watcher as the plain one).
//!
//! Certificates are made at test time with the openssl CLI: a CA and a `localhost` server
//! certificate it signs (SAN `DNS:localhost, IP:127.0.0.1`). rustls, like any strict verifier,
//! refuses a CA certificate used as the server's own, so a self-signed leaf would test nothing.
//! pg_hba: `hostssl` with SCRAM (so a password really travels, over TLS with channel binding),
//! `hostnossl ... reject`, and `local` trust for the harness's own setup over the Unix socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{as_server_user, block_on, is_root, pg_bin};

/// The password of `postgres` on the TLS cluster; tests assert it is never printed.
pub const PASSWORD: &str = "tls-Secret-9f3k";

pub struct TlsCluster {
    pub port: u16,
    /// The CA certificate that signed the server's (PEM), for `sslrootcert`.
    pub ca: PathBuf,
    pub dir: PathBuf,
}

impl TlsCluster {
    /// `postgres://postgres:PASSWORD@HOST:PORT/postgres?QUERY`.
    pub fn url(&self, host: &str, query: &str) -> String {
        let mut url = format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres",
            self.port
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

static CLUSTER: OnceLock<TlsCluster> = OnceLock::new();
static PLAIN: OnceLock<TlsCluster> = OnceLock::new();

pub fn tls_cluster() -> &'static TlsCluster {
    CLUSTER.get_or_init(|| start(true))
}

/// The opposite: `ssl = off`, plain `host` SCRAM only (a server or pooler without TLS), for
/// proving that `require` refuses it. Started only by the test that needs it.
pub fn plain_cluster() -> &'static TlsCluster {
    PLAIN.get_or_init(|| start(false))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(
        Command::new("openssl").current_dir(dir).args(args),
        &format!("openssl {}", args.join(" ")),
    );
}

fn make_certificates(data: &Path, dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=pgshift test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
    for f in ["server.crt", "server.key"] {
        std::fs::copy(dir.join(f), data.join(f)).unwrap();
    }
    // The server refuses a key readable by others or owned by someone else.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    if is_root() {
        run(
            Command::new("chown")
                .arg("postgres:")
                .arg(data.join("server.key"))
                .arg(data.join("server.crt")),
            "chown server.key",
        );
    }
}

fn start(tls: bool) -> TlsCluster {
    let bin = pg_bin();
    let dir = std::env::temp_dir().join(format!(
        "pgshift-test-{}-{}",
        if tls { "tls" } else { "plain" },
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        run(Command::new("chown").arg("postgres:").arg(&dir), "chown");
    }
    let data = dir.join("data");
    run(
        as_server_user(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .arg("--locale=C")
            .stdout(Stdio::null()),
        "initdb (TLS cluster)",
    );
    let hba = if tls {
        make_certificates(&data, &dir);
        "local all all trust\n\
         hostssl all all 127.0.0.1/32 scram-sha-256\n\
         hostnossl all all 127.0.0.1/32 reject\n"
    } else {
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    };
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    // A port the kernel says is free: a fixed one could be an open client socket's (ephemeral
    // ports are 32768-60999 here), and the server then never started.
    let port = super::free_port();
    let server = format!(
        "{} -D {} -p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off {}",
        bin.join("postgres").display(),
        data.display(),
        dir.display(),
        if tls {
            "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
        } else {
            "-c ssl=off"
        }
    );
    super::spawn_watched_server(&server, &dir);
    set_password(&dir, port);
    TlsCluster {
        port,
        ca: dir.join("ca.crt"),
        dir,
    }
}

/// Wait for the server on its Unix socket (plain text is fine there: local, and the only way
/// in besides TLS), then give `postgres` the password the TLS tests log in with.
fn set_password(dir: &Path, port: u16) {
    let mut pg = tokio_postgres::Config::new();
    pg.host_path(dir)
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = block_on(async {
            let (c, conn) = pg.connect(tokio_postgres::NoTls).await?;
            let sql = format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'");
            tokio::spawn(conn);
            c.batch_execute(&sql).await?;
            Ok::<_, tokio_postgres::Error>(())
        });
        if ready.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "TLS cluster did not start; see {}/server.log",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
