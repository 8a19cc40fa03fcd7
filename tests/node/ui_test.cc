// The operator page, GET /ui (issue 14), against real tallyd processes and a real browser:
// - served without a token, with its Content-Security-Policy and the other headers, the bytes the
//   binary embeds, and nothing in it that loads from another host;
// - in headless Chromium (`--dump-dom`, `--screenshot`) on a three-region cluster that went through
//   a partition (an overdraft fee, and a void of an idempotency key used in two regions): the
//   regions and peers, the account's balance as the API reports it, its statement (memos, every
//   line, the voided one struck through, a memo with markup shown as text), its forks with the op
//   kept and the op voided, and the stream "live" — which also shows that CSP `connect-src 'self'`
//   lets the page open its ws:// stream;
// - live: a page kept open through the DevTools protocol, in real time, sees a debit made after it
//   loaded — the balance and the statement change over the stream, without a reload.
// Screenshots (and the DOMs behind them) are left in test-output/ui for a person to look at.
#include <openssl/evp.h>
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "node/operator_page.h"
#include "node_test_util.h"

using namespace tally::test;
namespace fs = std::filesystem;

namespace {

constexpr std::chrono::seconds kBrowserTimeout{90};

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

fs::path OutputDir() {
  fs::path dir = UI_OUTPUT_DIR;
  fs::create_directories(dir);
  return dir;
}

// SIGKILLs every process whose command line names `profile` (a fresh temp folder of this test, so
// only the browser processes this test started match), and waits until they are gone.
void KillBrowserProcesses(const fs::path& profile) {
  const std::string needle = profile.string();
  for (int round = 0; round < 50; ++round) {
    bool any = false;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = Slurp(entry.path() / "cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(needle) == std::string::npos) continue;
      any = true;
      ::kill(std::stoi(name), SIGKILL);
    }
    if (!any) return;
    std::this_thread::sleep_for(100ms);
  }
}

std::vector<std::string> BrowserArgs(const fs::path& profile) {
  return {"--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--hide-scrollbars",
          "--window-size=1400,1200",
          "--no-first-run",
          "--no-default-browser-check",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--user-data-dir=" + profile.string()};
}

// Chromium, started through /bin/sh so that its stdout (the DOM of --dump-dom) and its stderr
// (noise about D-Bus and the like) go to different files.
bool StartBrowser(Process* p, const fs::path& dir, const std::string& tag,
                  std::vector<std::string> args, std::string* error) {
  std::vector<std::string> sh = {"-c", "exec \"$0\" \"$@\" 2>>\"$TALLY_UI_BROWSER_LOG\"",
                                 CHROMIUM_PATH};
  sh.insert(sh.end(), args.begin(), args.end());
  return p->Start("/bin/sh", sh, dir / (tag + ".out"), error,
                  {"TALLY_UI_BROWSER_LOG=" + (dir / (tag + ".err")).string()});
}

// One headless run (`mode`: "--dump-dom" or "--screenshot=FILE") on `url` with virtual time, in a
// private profile; returns its stdout. The test fails if Chromium fails or hangs.
std::string RunHeadless(const fs::path& dir, const std::string& tag, const std::string& mode,
                        const std::string& url) {
  const fs::path profile = dir / ("profile-" + tag);
  std::vector<std::string> args = BrowserArgs(profile);
  args.push_back("--virtual-time-budget=8000");
  args.push_back(mode);
  args.push_back(url);
  Process p;
  std::string error;
  REQUIRE(StartBrowser(&p, dir, tag, args, &error));
  const bool exited = WaitUntil([&] { return !p.running(); }, kBrowserTimeout, 50ms);
  const int code = p.ExitCode().value_or(-1);
  p.Stop();
  KillBrowserProcesses(profile);
  INFO("chromium " << mode << ": stderr " << Slurp(dir / (tag + ".err")));
  REQUIRE(exited);
  REQUIRE(code == 0);
  return Slurp(dir / (tag + ".out"));
}

std::string Base64Decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  REQUIRE(n >= 0);
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --size;  // padding
  out.resize(size);
  return out;
}

// A headless Chromium kept running and driven over the DevTools protocol, in real time: for what
// --virtual-time-budget cannot promise (a change made while the page is open reaching it).
class Browser {
 public:
  explicit Browser(fs::path dir) : dir_(std::move(dir)), profile_(dir_ / "profile-live") {}
  ~Browser() {
    ws_.reset();
    process_.Stop(5s);
    KillBrowserProcesses(profile_);
  }
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // Starts Chromium on about:blank and connects to its page.
  void Start() {
    std::vector<std::string> args = BrowserArgs(profile_);
    args.push_back("--remote-debugging-port=0");  // the port it picks is in DevToolsActivePort
    args.push_back("about:blank");
    std::string error;
    REQUIRE(StartBrowser(&process_, dir_, "live", args, &error));
    std::string port;
    REQUIRE(WaitUntil(
        [&] {
          std::ifstream f(profile_ / "DevToolsActivePort");
          return std::getline(f, port) && !port.empty();
        },
        30s));
    tally::ctl::Url url;
    url.host = "127.0.0.1";
    url.port = port;
    tally::ctl::HttpClient http(url, 10s);
    std::string page;
    REQUIRE(WaitUntil(
        [&] {
          tally::ctl::HttpResponse res;
          if (!http.Request("GET", "/json/list", "", {}, &res, &error) || res.status != 200)
            return false;
          for (const auto& t : json::parse(res.body, nullptr, false))
            if (t.is_object() && t.value("type", "") == "page")
              page = t.value("webSocketDebuggerUrl", "");
          return !page.empty();
        },
        10s));
    const std::size_t path = page.find("/devtools/");
    REQUIRE(path != std::string::npos);
    ws_ = std::make_unique<tally::ctl::WsReader>(url, 10s);
    INFO(error);
    REQUIRE(ws_->Open(page.substr(path), {}, &error));
  }

  // Sends a DevTools command and returns its result (events in between are skipped).
  json Call(const std::string& method, const json& params = json::object()) {
    const int id = ++last_id_;
    std::string error;
    REQUIRE(ws_->Send(json{{"id", id}, {"method", method}, {"params", params}}.dump(), &error));
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < end) {
      std::string text;
      const int got = ws_->Next(5s, &text, &error);
      INFO(method << ": " << error);
      REQUIRE(got >= 0);
      if (got == 0) continue;
      json m = json::parse(text, nullptr, false);
      if (!m.is_object() || m.value("id", 0) != id) continue;
      INFO(method << " answered " << text.substr(0, 500));
      REQUIRE(m.contains("result"));
      return m["result"];
    }
    FAIL("DevTools did not answer " << method);
    return json();
  }

  // The value of a JavaScript expression in the page (JSON-serialisable).
  json Eval(const std::string& expression) {
    json r = Call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}});
    return r["result"].value("value", json());
  }

  // Asks Chromium to quit (its helper processes go with it) and waits for it to exit.
  void Close() {
    std::string error;
    if (ws_ && ws_->Send(json{{"id", ++last_id_}, {"method", "Browser.close"}}.dump(), &error))
      WaitUntil([&] { return !process_.running(); }, 10s);
    ws_.reset();
  }

  void Screenshot(const fs::path& file) {
    json r = Call("Page.captureScreenshot", {{"format", "png"}});
    std::ofstream(file, std::ios::binary) << Base64Decode(r.at("data").get<std::string>());
  }

 private:
  fs::path dir_, profile_;
  Process process_;
  std::unique_ptr<tally::ctl::WsReader> ws_;
  int last_id_ = 0;
};

// What the page shows of the selected account, read from its data- attributes.
constexpr const char* kPageState = R"(JSON.stringify({
  stream: document.getElementById('app').dataset.stream || '',
  messages: Number(document.getElementById('app').dataset.messages || 0),
  balance: document.getElementById('bal-balance').dataset.value || '',
  lines: document.getElementById('statement').dataset.lines || '',
  top_memo: (document.querySelector('#statement tbody tr td:nth-child(5)') || {}).textContent || ''
}))";

// The page's state, or null while it is not loaded yet (the expression then throws).
json PageState(Browser& browser) {
  const json v = browser.Eval(kPageState);
  return v.is_string() ? json::parse(v.get<std::string>()) : json();
}

// POST a credit or debit (`what`) with a memo.
Reply WithMemo(Api& api, const std::string& what, const std::string& account, std::int64_t amount,
               const std::string& key, const std::string& memo) {
  return api.Call("POST", "/v1/accounts/" + account + "/" + what,
                  json{{"amount", amount}, {"memo", memo}}.dump(), {{"Idempotency-Key", key}});
}

std::string PageUrl(Cluster& c, std::size_t i, const std::string& account) {
  return c.url(i) + "/ui#token=" + kAdminToken + "&account=" + account;
}

std::string Dot(const json& d) {
  return d.at("region").get<std::string>() + ":" + std::to_string(d.at("seq").get<std::uint64_t>());
}

}  // namespace

TEST_CASE("GET /ui: no token, its security headers, the embedded page, nothing from elsewhere",
          "[node][ui]") {
  ClusterOptions options;
  options.regions = {"eu"};
  options.tls = false;
  Cluster c("ui-page", options);
  REQUIRE_STARTED(c);
  Api api = c.api(0);
  Reply r = api.CallNoAuth("GET", "/ui");
  INFO(r.status << " " << r.transport_error);
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(r.header("Content-Security-Policy") ==
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'");
  CHECK(r.header("X-Content-Type-Options") == "nosniff");
  CHECK(r.header("Cache-Control") == "no-cache");
  CHECK(r.raw == tally::node::OperatorPageHtml());
  CHECK(r.raw.size() > 1000);
  CHECK(r.raw.find("</html>") != std::string::npos);
  // A wrong token does not matter either: the page is the same for everyone.
  CHECK(api.CallNoAuth("GET", "/ui", "", {{"Authorization", "Bearer nope"}}).status == 200);

  // Only GET, and no query: the page's state rides in the fragment, which is never sent.
  Reply post = api.CallNoAuth("POST", "/ui");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET");
  CHECK(api.CallNoAuth("GET", "/ui?token=x").status == 400);

  // No network assets: the only "scheme://" in the page is the stream's, to its own host.
  const std::string& page = r.raw;
  std::size_t schemes = 0;
  for (std::size_t at = page.find("://"); at != std::string::npos; at = page.find("://", at + 1)) {
    ++schemes;
    const std::string around = page.substr(at >= 10 ? at - 10 : 0, 50);
    INFO("a URL in the page: " << around);
    CHECK(around.find("ws://") != std::string::npos);
    CHECK(around.find("location.host") != std::string::npos);
  }
  CHECK(schemes == 2);
  CHECK(page.find("http://") == std::string::npos);
  CHECK(page.find("https://") == std::string::npos);
  CHECK(page.find("src=") == std::string::npos);     // no script, image or frame from anywhere
  CHECK(page.find("url(") == std::string::npos);     // no CSS resource
  CHECK(page.find("@import") == std::string::npos);  // no stylesheet
  CHECK(page.find("@font-face") == std::string::npos);
  CHECK(Count(page, "href=") == 1);  // the empty data: icon
  CHECK(page.find("href=\"data:,\"") != std::string::npos);
  // Data from the API goes in as text only.
  CHECK(page.find("innerHTML") == std::string::npos);
  CHECK(page.find("insertAdjacentHTML") == std::string::npos);
  CHECK(page.find("document.write") == std::string::npos);
}

TEST_CASE("the operator page in Chromium: cluster, balance, statement, forks, live updates",
          "[node][ui]") {
  if (std::string(CHROMIUM_PATH).find("NOTFOUND") != std::string::npos || CHROMIUM_PATH[0] == 0)
    FAIL("chromium not found when configuring: install it (scripts/setup) and re-run cmake");
  ClusterOptions options;
  options.proxied = true;
  options.tls = false;  // plain HTTP on loopback: the browser needs no CA
  Cluster c("ui", options);
  REQUIRE_STARTED(c);
  REQUIRE(c.WaitConnected(10s));
  Api eu = c.api(0), us = c.api(1), ap = c.api(2);
  REQUIRE(eu.Open("alice", 300, 10).status == 201);
  REQUIRE(eu.Open("shop-1").status == 201);
  WaitVisible(c, "alice");
  WaitVisible(c, "shop-1");
  REQUIRE(WithMemo(eu, "credits", "alice", 100, "dep-eu", "salary").status == 200);
  REQUIRE(WithMemo(us, "credits", "alice", 100, "dep-us", "refund <b>us</b> & co").status == 200);
  REQUIRE(WithMemo(ap, "credits", "alice", 100, "dep-ap", "coffee beans").status == 200);
  REQUIRE(c.WaitAgree("alice", 10s).agree);
  WaitFinal(c, "alice");

  // Partitioned, two regions spend more than is there (an overdraft fee) and the same key is used
  // in two regions (one use voided after the heal): the two kinds of fork.
  c.CutAll();
  WaitIsolated(c);
  REQUIRE(WithMemo(eu, "debits", "alice", 150, "d-eu", "rent").status == 200);
  REQUIRE(WithMemo(us, "debits", "alice", 150, "d-us", "groceries").status == 200);
  REQUIRE(us.Call("POST", "/v1/transfers",
                  json{{"from", "alice"}, {"to", "shop-1"}, {"amount", 30}, {"memo", "invoice 42"}}
                      .dump(),
                  {{"Idempotency-Key", "t-us"}})
              .status == 200);
  REQUIRE(WithMemo(ap, "credits", "alice", 5, "dup", "dup at ap").status == 200);
  REQUIRE(WithMemo(eu, "credits", "alice", 5, "dup", "dup at eu").status == 200);
  c.HealAll();
  REQUIRE(c.WaitAgree("alice", 20s).agree);
  REQUIRE(c.WaitAgree("shop-1", 20s).agree);
  WaitFinal(c, "alice");
  WaitFinal(c, "shop-1");

  // What the API says, which the page must show.
  Reply account = eu.Account("alice");
  REQUIRE(account.status == 200);
  const std::int64_t balance = Int(account.body, "balance");
  Reply history = eu.Call("GET", "/v1/accounts/alice/history?limit=50");
  REQUIRE(history.status == 200);
  const std::size_t lines = history.body["lines"].size();
  CHECK(lines == 9);  // open, 3 deposits, 2 debits, a transfer, 2 uses of "dup"
  Reply report = eu.Call("GET", "/v1/accounts/alice/report?format=json");
  REQUIRE(report.status == 200);
  const json forks = report.body["accounts"][0]["forks"];
  INFO(forks.dump(1));
  json void_fork;
  for (const auto& f : forks)
    if (f["resolution"]["kind"] == "void") void_fork = f;
  REQUIRE(void_fork.is_object());
  REQUIRE(void_fork["survivor"].is_object());
  const std::string kept = Dot(void_fork["survivor"]), voided = Dot(void_fork["voided"]);

  const fs::path out = OutputDir();
  TempDir work("ui-browser");
  const std::string url = PageUrl(c, 0, "alice");
  const std::string dom = RunHeadless(work.path(), "dump", "--dump-dom", url);
  std::ofstream(out / "ui-page.html") << dom;
  const fs::path shot = out / "ui-page.png";
  fs::remove(shot);
  RunHeadless(work.path(), "shot", "--screenshot=" + shot.string(), url);
  REQUIRE(fs::exists(shot));
  std::cout << "operator page screenshot: " << shot.string() << "\n";

  INFO("DOM written to " << (out / "ui-page.html").string());
  REQUIRE(dom.find("</html>") != std::string::npos);
  // No panel shows an error.
  CHECK_FALSE(std::regex_search(dom, std::regex(R"(class="err" id="[a-z-]+">[^<])")));
  // The cluster: every region, this one marked, both peers connected and reachable.
  CHECK(dom.find(R"(data-regions="eu,us,ap")") != std::string::npos);
  CHECK(dom.find("eu (this region)") != std::string::npos);
  CHECK(Count(dom, R"(<td class="ok">connected)") == 2);
  CHECK(dom.find("frontier 20") != std::string::npos);  // as a UTC date
  // The account list and the balance as the API reports it.
  CHECK(dom.find(R"(<tr data-id="shop-1">)") != std::string::npos);
  const std::string shown = std::to_string(balance) + " EUR";
  CHECK(dom.find(R"(id="bal-balance" data-value=")" + std::to_string(balance) + "\">" + shown) !=
        std::string::npos);
  // The statement: every line, the memos, the voided use of "dup" struck through, markup as text.
  CHECK(dom.find(R"(data-lines=")" + std::to_string(lines) + "\"") != std::string::npos);
  CHECK(Count(dom, "data-seq=") == static_cast<int>(lines));
  CHECK(Count(dom, R"(<tr class="final voided")") == 1);
  CHECK(Count(dom, R"(<tr class="tentative)") == 0);
  for (const char* memo : {"salary", "coffee beans", "rent", "groceries", "invoice 42"})
    CHECK(dom.find(memo) != std::string::npos);
  CHECK(dom.find("refund &lt;b&gt;us&lt;/b&gt; &amp; co") != std::string::npos);
  CHECK(dom.find("<b>us</b>") == std::string::npos);
  // The forks: the overdraft fee and the void, with the op kept and the op voided.
  CHECK(dom.find(R"(data-forks=")" + std::to_string(forks.size()) + "\"") != std::string::npos);
  CHECK(forks.size() == 2);
  CHECK(dom.find(R"(<tr class="final" data-kind="overdraft_fee">)") != std::string::npos);
  CHECK(dom.find(R"(<td class="mono kept" data-op=")" + kept + "\">" + kept + "</td>") !=
        std::string::npos);
  CHECK(dom.find(R"(<td class="mono voided" data-op=")" + voided + "\">" + voided + "</td>") !=
        std::string::npos);
  // The stream opened (CSP connect-src 'self' covers ws:// to the same host and port).
  CHECK(dom.find(R"(data-stream="live")") != std::string::npos);

  // Live: a page open in real time sees a debit made after it loaded, over its stream.
  Browser browser(work.path());
  browser.Start();
  browser.Call("Page.navigate", {{"url", url}});
  json state;
  const bool loaded = WaitUntil(
      [&] {
        state = PageState(browser);
        return state.is_object() && state["stream"] == "live" &&
               state["balance"] == std::to_string(balance) &&
               state["lines"] == std::to_string(lines);
      },
      20s, 100ms);
  INFO("page state: " << state.dump());
  REQUIRE(loaded);
  const int messages_before = state["messages"].get<int>();
  REQUIRE(WithMemo(eu, "debits", "alice", 7, "after-load", "paid while you watched").status == 200);
  const bool updated = WaitUntil(
      [&] {
        state = PageState(browser);
        return state.is_object() && state["balance"] == std::to_string(balance - 7) &&
               state["lines"] == std::to_string(lines + 1) &&
               state["top_memo"] == "paid while you watched";
      },
      15s, 100ms);
  INFO("page state after the debit: " << state.dump());
  CHECK(updated);
  CHECK(state["messages"].get<int>() > messages_before);  // it came over the stream
  CHECK(state["stream"] == "live");
  const fs::path live_shot = out / "ui-live.png";
  browser.Screenshot(live_shot);
  std::ofstream(out / "ui-live.html")
      << browser.Eval("document.documentElement.outerHTML").get<std::string>();
  browser.Close();
  REQUIRE(fs::exists(live_shot));
  std::cout << "operator page after a live debit: " << live_shot.string() << "\n";
  Reply after = eu.Account("alice");
  CHECK(Int(after.body, "balance") == balance - 7);
}
