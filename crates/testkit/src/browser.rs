//! A real headless Chromium for end-to-end tests of HTML pages, driven over WebDriver.
//!
//! [`Browser::start`] runs Debian's `/usr/bin/chromedriver` on a loopback port it picks itself
//! (`--port=0`), opens one session of `/usr/bin/chromium` in new headless mode with a fresh
//! profile directory, and talks to it with the `fantoccini` client. `.ci/run` installs both
//! packages when the driver is missing.
//!
//! Every helper waits for what it needs (never a fixed sleep) and panics with the selector and
//! the page's URL when something is not there, which is what a test wants. [`Browser::close`]
//! ends the session; dropping a [`Browser`] (also on a panic) kills the driver's whole process
//! group, browser included, and removes the profile directory.
//!
//! Screenshots go to `portal-screenshots/` in the target directory (`CARGO_TARGET_DIR`, else
//! the workspace's `target/`).

use std::{
    io::{BufRead as _, BufReader},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

pub use fantoccini::{self, cookies::Cookie, elements::Element, Locator};
use fantoccini::{wd::Capabilities, Client, ClientBuilder};
use serde_json::{json, Value};

/// The Debian `chromium-driver` package's driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The Debian `chromium` package's launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long [`Browser::wait_for`] and the helpers built on it wait for a selector.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// Width and height of the window a session starts with.
pub const WINDOW: (u32, u32) = (1280, 900);

/// Tallest full-page screenshot; longer pages are cut there.
const MAX_SHOT_HEIGHT: u32 = 4000;

/// One chromedriver, one headless Chromium, one WebDriver session.
pub struct Browser {
    /// `None` once [`Browser::close`] has taken it.
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
    shots: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver_pid", &self.driver.id())
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a [`WINDOW`]-sized window.
    pub async fn start() -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: apt-get install chromium chromium-driver (.ci/run does)"
        );
        let profile = std::env::temp_dir().join(format!(
            "hookline-browser-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&profile).expect("create the browser profile directory");

        // Its own process group, so that dropping the Browser can end the driver and every
        // browser process it started with one signal, whatever state the session is in.
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let port = match driver_port(&mut driver) {
            Ok(port) => port,
            Err(e) => {
                kill_group(&mut driver);
                let _ = std::fs::remove_dir_all(&profile);
                panic!("chromedriver did not start: {e}");
            }
        };

        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--hide-scrollbars",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        // Plain HTTP: the driver listens on loopback only.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => client,
            Err(e) => {
                kill_group(&mut driver);
                let _ = std::fs::remove_dir_all(&profile);
                panic!("no WebDriver session with headless Chromium: {e}");
            }
        };
        let shots = screenshot_dir();
        Browser {
            client: Some(client),
            driver,
            profile,
            shots,
        }
    }

    /// The WebDriver client, for whatever the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn current_url(&self) -> url::Url {
        self.client().current_url().await.expect("current URL")
    }

    /// The path of the current page (`/portal/webhooks`).
    pub async fn path(&self) -> String {
        self.current_url().await.path().to_owned()
    }

    /// Reloads the current page.
    pub async fn refresh(&self) {
        self.client().refresh().await.expect("reload");
    }

    /// The HTTP status the current page was served with (the Navigation Timing entry's
    /// `responseStatus`).
    pub async fn page_status(&self) -> u16 {
        let status = self
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; \
                 return n ? n.responseStatus : 0;",
                vec![],
            )
            .await;
        status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("no response status: {status}"))
    }

    /// The text of the element matching `css` now, if there is one.
    pub async fn text_now(&self, css: &str) -> Option<String> {
        let el = self.find_all(css).await.into_iter().next()?;
        el.text().await.ok()
    }

    /// Reloads the page until the element matching `css` has a text `done` accepts (a
    /// server-rendered page shows progress only when loaded again), waiting up to `within`.
    pub async fn reload_until(
        &self,
        css: &str,
        within: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(text) = self.text_now(css).await {
                if done(&text) {
                    return text;
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{css} never reached the expected text within {within:?}; now {:?} on {}",
                    self.text_now(css).await,
                    self.where_am_i().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.refresh().await;
        }
    }

    /// The element matching `css` now, or a panic naming it and the page.
    pub async fn find(&self, css: &str) -> Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!("{css} not found on {}: {e}", self.where_am_i().await),
        }
    }

    /// Every element matching `css` now (maybe none).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// Whether an element matches `css` now.
    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// Waits up to [`DEFAULT_WAIT`] for `css` to match.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, DEFAULT_WAIT).await
    }

    /// Waits up to `timeout` for `css` to match.
    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        match self
            .client()
            .wait()
            .at_most(timeout)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(el) => el,
            Err(e) => panic!(
                "{css} did not appear on {} within {timeout:?}: {e}",
                self.where_am_i().await
            ),
        }
    }

    /// Waits until the current URL's path is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + DEFAULT_WAIT;
        while self.path().await != path {
            if tokio::time::Instant::now() > deadline {
                panic!("never reached {path}, at {}", self.where_am_i().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element matching `css` (waiting for it first).
    pub async fn click(&self, css: &str) {
        let el = self.wait_for(css).await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Marks the current document, so that [`Browser::wait_for_new_page`] can tell when
    /// another one has replaced it (a form posted to the same address, say).
    pub async fn mark_page(&self) {
        self.execute("window.__hooklineOldPage = true;", vec![])
            .await;
    }

    /// Waits until a document without the [`Browser::mark_page`] mark has finished loading.
    pub async fn wait_for_new_page(&self) {
        let deadline = tokio::time::Instant::now() + DEFAULT_WAIT;
        loop {
            // While the page changes, a script may fail to run: that is "not yet".
            let state = self
                .client()
                .execute(
                    "return window.__hooklineOldPage === true ? 'old' : document.readyState;",
                    vec![],
                )
                .await;
            if matches!(&state, Ok(Value::String(s)) if s == "complete") {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no new page within {DEFAULT_WAIT:?} ({state:?}), at {}",
                    self.where_am_i().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks what submits a form or follows a link, and waits for the page it leads to.
    pub async fn click_and_load(&self, css: &str) {
        let el = self.wait_for(css).await;
        self.mark_page().await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.wait_for_new_page().await;
    }

    /// Replaces the value of the input matching `css` with `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.wait_for(css).await;
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Chooses the option with `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let el = self.wait_for(css).await;
        el.select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value:?} in {css}: {e}"));
    }

    /// Sets the checkbox matching `css` to `checked`.
    pub async fn check(&self, css: &str, checked: bool) {
        let el = self.wait_for(css).await;
        let now = el.is_selected().await.expect("checkbox state");
        if now != checked {
            el.click()
                .await
                .unwrap_or_else(|e| panic!("toggle {css}: {e}"));
        }
    }

    /// The rendered text of the element matching `css` (waiting for it first).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// An attribute of the element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait_for(css)
            .await
            .attr(name)
            .await
            .unwrap_or_else(|e| panic!("{name} of {css}: {e}"))
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("execute {script:?}: {e}"))
    }

    /// The cookies the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client().get_all_cookies().await.expect("cookies")
    }

    /// Forgets every cookie of the current page's site (a new visitor).
    pub async fn delete_cookies(&self) {
        self.client()
            .delete_all_cookies()
            .await
            .expect("delete cookies");
    }

    /// Resizes the window (a phone is about 390 wide).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client()
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resize to {width}x{height}: {e}"));
    }

    /// Saves a PNG of the whole page (up to 4000 pixels tall) as
    /// `portal-screenshots/{name}.png` in the target directory, and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let client = self.client();
        let (width, height) = client.get_window_size().await.expect("window size");
        let (width, height) = (
            u32::try_from(width).expect("width"),
            u32::try_from(height).expect("height"),
        );
        // The window is a little taller than its viewport; grow it by the part of the
        // document below the fold.
        let sizes = self
            .execute(
                "return [document.documentElement.scrollHeight, window.innerHeight];",
                vec![],
            )
            .await;
        let doc = sizes[0].as_u64().unwrap_or(0);
        let view = sizes[1].as_u64().unwrap_or(0);
        let taller = u32::try_from(doc.saturating_sub(view)).unwrap_or(MAX_SHOT_HEIGHT);
        let resized = taller > 0;
        if resized {
            self.set_window_size(width, (height + taller).min(MAX_SHOT_HEIGHT))
                .await;
        }
        let png = client.screenshot().await.expect("screenshot");
        if resized {
            self.set_window_size(width, height).await;
        }
        std::fs::create_dir_all(&self.shots).expect("create the screenshot directory");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Ends the session (the driver closes the browser), then stops the driver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        // Drop kills whatever is left and removes the profile.
    }

    /// The current URL and the start of the page's text, for failure messages.
    async fn where_am_i(&self) -> String {
        let url = match self.client().current_url().await {
            Ok(u) => u.to_string(),
            Err(e) => format!("(no URL: {e})"),
        };
        let body = self
            .client()
            .find(Locator::Css("body"))
            .await
            .ok()
            .map(|b| async move { b.text().await.unwrap_or_default() });
        let text = match body {
            Some(f) => f.await,
            None => String::new(),
        };
        let text: String = text.chars().take(600).collect();
        format!("{url} (page text: {text:?})")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Reads the driver's stdout until it names its port (`--port=0` lets it pick a free one).
fn driver_port(driver: &mut Child) -> Result<u16, String> {
    let stdout = driver.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    // A thread, so that a driver that never says anything cannot hang the test; it keeps
    // draining stdout afterwards so the driver never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .map_err(|_| "it never said which port it listens on".to_owned())
}

/// SIGKILL to the driver's process group (the driver and the browser it started), then reap
/// the driver.
fn kill_group(driver: &mut Child) {
    // `kill` from procps: no unsafe libc call in this crate. Its exit status only says
    // whether anything was left to kill.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
    // SIGKILL is not instant: wait (bounded) until no live process is left in the group, so
    // that nothing outlives the Browser.
    let group = driver.id().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while group_alive(&group) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process of process group `pgid` is still running (not a zombie).
fn group_alive(pgid: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).unwrap_or("");
        pgrp == pgid && state != "Z" && state != "X"
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `portal-screenshots/` in `CARGO_TARGET_DIR`, else in the workspace's `target/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target")
                .components()
                .collect()
        });
    target.join("portal-screenshots")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::TcpListener,
    };

    const FIRST: &str = r#"<!doctype html><title>first</title>
<form id="f" method="get" action="/second"><input name="who"><button type="submit">Go</button></form>"#;

    /// A page server: `/` is a form that GETs `/second`, which echoes nothing but a heading.
    async fn serve() -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, body) = if path == "/" {
                        ("200 OK", FIRST.to_owned())
                    } else if path.starts_with("/second") {
                        (
                            "200 OK",
                            "<!doctype html><h1 id=\"done\">Second page</h1>".to_owned(),
                        )
                    } else {
                        ("404 Not Found", String::new())
                    };
                    let res = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                         set-cookie: seen=1; HttpOnly; SameSite=Strict; Path=/\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(res.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (format!("http://{addr}"), task)
    }

    /// Live processes whose command line mentions `needle` (zombies have none).
    fn processes_mentioning(needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(needle) {
                    found.push(cmdline);
                }
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_an_open_browser_leaves_no_process_and_no_profile_behind() {
        let browser = Browser::start().await;
        browser.goto("about:blank").await;
        let profile = browser.profile.clone();
        let needle = profile.display().to_string();
        assert!(
            !processes_mentioning(&needle).is_empty(),
            "the browser runs with its profile"
        );
        // As when a test panics: no `close`.
        drop(browser);
        assert_eq!(processes_mentioning(&needle), Vec::<String>::new());
        assert!(!profile.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_headless_chromium_fills_a_form_follows_it_reads_cookies_and_screenshots() {
        let (base, server) = serve().await;
        let browser = Browser::start().await;
        browser.goto(&format!("{base}/")).await;
        browser.fill("input[name=who]", "tester").await;
        browser.click_and_load("#f button[type=submit]").await;
        assert_eq!(browser.path().await, "/second");
        assert_eq!(browser.text("h1#done").await, "Second page");
        assert_eq!(
            browser.current_url().await.query(),
            Some("who=tester"),
            "the form sent what was typed"
        );

        let cookies = browser.cookies().await;
        let seen = cookies
            .iter()
            .find(|c| c.name() == "seen")
            .expect("cookie set");
        assert_eq!(seen.http_only(), Some(true));
        assert!(seen.same_site().is_some_and(|s| s.is_strict()));
        browser.delete_cookies().await;
        assert!(browser.cookies().await.is_empty());

        browser.set_window_size(390, 844).await;
        let shot = browser.screenshot("testkit-smoke-phone").await;
        let png = std::fs::read(&shot).expect("screenshot written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        browser.close().await;
        server.abort();
    }
}
