// SdNotify: tells systemd how the service is doing (the sd_notify protocol, written out here
// rather than linking libsystemd for one datagram): READY=1 once tallyd serves, RELOADING=1 and
// READY=1 around a SIGHUP reload, STOPPING=1 when it begins to shut down. The unit
// (packaging/tallyd.service) is Type=notify, so `systemctl start` returns once tallyd listens, and
// a tallyd that fails before that is a failed start. Without $NOTIFY_SOCKET (not under systemd)
// every call does nothing.
//
// Not a class: one function. Thread-safe (one datagram per call).

#ifndef TALLY_NODE_SD_NOTIFY_H_
#define TALLY_NODE_SD_NOTIFY_H_

#include <string_view>

namespace tally::node {

// Sends `state` ("READY=1", "STOPPING=1", …) to $NOTIFY_SOCKET; false when there is none or the
// send failed (systemd then treats the service by its timeouts, which is all it can do).
bool SdNotify(std::string_view state);

}  // namespace tally::node

#endif  // TALLY_NODE_SD_NOTIFY_H_
