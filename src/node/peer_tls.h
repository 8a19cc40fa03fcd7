// Mutual TLS between regions (docs/operations.md, "Certificates"). A cluster has one CA; every
// region holds a certificate from it whose subjectAltName carries the URI
// tally://<cluster_id>/<region>. Both ends of a gossip connection present their certificate and
// check the other's: issued by the cluster CA, within its validity, naming a region of this cluster
// — the one dialled (outbound) and the one its Hello then claims (inbound). A process without
// such a certificate cannot join gossip, so it cannot send ops under any region's name.
//
// Not a class: functions. Thread-safe; the context they build is shared read-only by the
// connections of the io thread.

#ifndef TALLY_NODE_PEER_TLS_H_
#define TALLY_NODE_PEER_TLS_H_

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "node/config.h"
#include "node/net.h"

// clang-format off
#include <boost/asio/ssl.hpp>
// clang-format on

namespace tally::node {

namespace ssl = asio::ssl;

// The context both directions of gossip use: TLS 1.3 only; `files`' certificate and key; the
// cluster CA as the only trust anchor; a peer certificate required. Refuses (InvalidArgument
// naming the setting and file) a file that cannot be read, a key that does not match the
// certificate, and a certificate of our own that is expired or does not name `region` of
// `cluster_id` — every peer would refuse it.
Status MakePeerTlsContext(const TlsFiles& files, std::string_view cluster_id,
                          std::string_view region, std::shared_ptr<ssl::context>* out);

// Loads tls.`cert_setting` (a PEM certificate chain) and tls.`key_setting` (its private key) into
// `ctx`, both checked readable first. InvalidArgument naming the setting and file when one cannot
// be read or loaded, or the key is not the certificate's. Gossip's and the client API's contexts
// load theirs with it.
Status LoadCertificateAndKey(ssl::context* ctx, std::string_view cert_setting,
                             const std::string& cert, std::string_view key_setting,
                             const std::string& key);

// OK when `path` (the file of tls.`setting`) can be opened for reading; else InvalidArgument
// "tls.<setting> <path>: cannot be read: <why>". OpenSSL's own word for a missing file is vague.
Status CheckTlsFileReadable(std::string_view setting, const std::string& path);

// The region `cert` names in `cluster_id`: its one subjectAltName URI tally://<cluster_id>/<name>.
// InvalidArgument saying what it carries instead (no such URI, another cluster's, two of them).
Status CertificateRegion(X509* cert, std::string_view cluster_id, std::string* region);

}  // namespace tally::node

#endif  // TALLY_NODE_PEER_TLS_H_
