// The operator page, GET /ui: one self-contained HTML document (inline CSS and JS, no network
// assets) that shows the cluster, a searchable account list, one account's balances, statement and
// forks, and follows that account live over GET /v1/stream (docs/operations.md, "GET /ui").
//
// The page carries no data: the browser reads everything from the API with the operator's token,
// so serving the page needs no token (like /healthz). Its source is src/node/ui/operator.html,
// embedded at build time (src/node/CMakeLists.txt) into a generated operator_page.cc, so the
// binary is all a region needs.
//
// Thread-safe: the page and its headers are constants.

#ifndef TALLY_NODE_OPERATOR_PAGE_H_
#define TALLY_NODE_OPERATOR_PAGE_H_

#include <string_view>

namespace tally::node {

// The page, UTF-8.
std::string_view OperatorPageHtml();

inline constexpr std::string_view kOperatorPageContentType = "text/html; charset=utf-8";

// The answer's other headers, as "Name: value\r\n" lines. The policy allows the page's own inline
// script and style and connections to its own origin only (fetches and, in CSP Level 3, the
// ws:/wss: stream of the same host and port); nothing else may load, submit, frame it or be framed
// by it. `no-cache`: a browser revalidates, so a new tallyd's page is seen after an upgrade.
inline constexpr std::string_view kOperatorPageHeaders =
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Cache-Control: no-cache\r\n";

}  // namespace tally::node

#endif  // TALLY_NODE_OPERATOR_PAGE_H_
