# tallyd's unit tests of pure pieces (config parsing, auth, the gossip TLS context, the API's request validation in
# api_test.cc, the LevelDB store, and the store through a crash with a fault-injecting Env),
# label `node`. Included from tests/node/CMakeLists.txt.
tally_add_catch_test(tallyd_unit_test node
  tallyd_config_test.cc
  tallyd_auth_test.cc
  api_test.cc
  stream_messages_test.cc
  batch_request_test.cc
  tallyd_store_test.cc
  tallyd_history_test.cc
  tallyd_store_backup_test.cc
  tallyd_store_crash_test.cc
  tallyd_process_metrics_test.cc
  tallyd_peer_tls_test.cc
  tallyd_sd_notify_test.cc
)
target_link_libraries(tallyd_unit_test PRIVATE tally_node tally_node_harness OpenSSL::SSL)
target_compile_definitions(tallyd_unit_test PRIVATE TALLY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# tallyd as a process at start (bad config, damaged store, wrong data directory): no ports bound.
tally_add_catch_test(tallyd_startup_test node tallyd_startup_test.cc)
target_link_libraries(tallyd_startup_test PRIVATE tally_node)
target_compile_definitions(tallyd_startup_test PRIVATE TALLYD_PATH="$<TARGET_FILE:tallyd>")
add_dependencies(tallyd_startup_test tallyd)
