// perfsuite's own custom graph pass library, for testing "apply a user's pass library".
//
// It is written the way user pass libraries for BERT are (GluonNLP 0.10's scripts/bert custom
// pass, for one): it finds its targets by the node names GluonNLP's BERT export gives them, and
// it parses and re-serializes the graph with the facilities of the wheel's own lib_api.h.
//
// Targets: the first FullyConnected of every transformer layer's feed-forward network, named
//   bertencoder0_transformer<N>_positionwiseffn0_ffn_1_fwd        (N = 0, 1, ...)
// by GluonNLP 0.10's BERTEncoder (its output feeds the GELU, which is why a real pass splits its
// bias off: to fuse bias + GELU).
//
// Four passes, registered with REGISTER_PASS:
//
//   perfsuite_identity_rewrite  (correct)   every target with a bias becomes
//                                           FullyConnected(no_bias=True) followed by
//                                           broadcast_add(<fc output>, <bias>): one more node
//                                           per layer, the same mathematics. A graph with no
//                                           target at all is an error (MX_FAIL, the message
//                                           names what it looked for), not a silent no-op.
//   perfsuite_drop_bias         (WRONG, on purpose)  the same targets, the bias silently dropped.
//                                           A parity checker must catch it.
//   perfsuite_crash             (crashes, on purpose)  like a pass that divides by a head count
//                                           it never found: it counts the encoder-decoder
//                                           attention nodes (_contrib_interleaved_matmul_encdec_qk),
//                                           which a BERT graph never has, and divides by that
//                                           count: SIGFPE in the process that applies it.
//   perfsuite_hang              (hangs, on purpose)  sleeps in an endless loop.
//
// Option (optimize_for keyword argument, as a string):
//   fc_name_contains=<text>   rewrite only the targets whose name contains <text> (e.g.
//                             "transformer1_" for the second layer); default: all of them. When
//                             no target contains it, the pass fails rather than doing nothing.
// Any other option is rejected (MX_FAIL), so a misspelt option cannot silently do nothing.
//
// The rewritten bias variable gets a "__shape__" attribute "(num_hidden,)": after the
// rewrite nothing else pins its shape, and shape inference from the data shapes alone
// (Gluon's SymbolBlock does that) would otherwise leave it unknown.
//
// Supported lib_api versions (MX_LIBRARY_VERSION of the lib_api.h compiled against):
//   7   (MXNet 1.7.x)  the pass receives and returns the graph as a JSON string; it is parsed
//                      and dumped with lib_api.h's own JsonParser/JsonVal (header-only). That
//                      parser ends a string at the first '"' even when escaped, which breaks on
//                      attributes such as "__init__": "[\"uniform\", {\"scale\": 1.0}]" (Gluon
//                      parameters with an initializer), so escaped quotes are swapped for a
//                      placeholder byte before parsing and restored after dumping.
//   10  (MXNet 1.8.x)  the pass receives an mxnet::ext::Graph* (parsed and re-serialized by
//                      lib_api.cc's Graph::fromString/toString); lib_api.h only declares that
//                      API, src/lib_api.cc of the same release must be compiled in. The 1.8.0
//                      wheels do not ship it (1.8's and 1.9's Graph API are identical).
//   11  (MXNet 1.9.x)  as 10; the 1.9 wheels ship src/lib_api.cc.
// Written for perfsuite from scratch; it uses only the public lib_api.h interface.

#include <chrono>
#include <csignal>
#include <iostream>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mxnet/lib_api.h"

#ifndef MX_LIBRARY_VERSION
#error "mxnet/lib_api.h defines no MX_LIBRARY_VERSION: this MXNet has no custom-library API"
#endif
#if MX_LIBRARY_VERSION < 7
#error "perfsuite_passes needs MX_LIBRARY_VERSION >= 7 (MXNet >= 1.7.0): REGISTER_PASS does not exist before"
#endif
#if MX_LIBRARY_VERSION > 7 && MX_LIBRARY_VERSION < 10
#error "perfsuite_passes supports lib_api versions 7 (MXNet 1.7) and 10/11 (MXNet 1.8/1.9), not intermediate nightly versions"
#endif

#if MX_LIBRARY_VERSION >= 10
using mxnet::ext::Graph;
using mxnet::ext::MXReturnValue;
using mxnet::ext::MX_FAIL;
using mxnet::ext::MX_SUCCESS;
using mxnet::ext::Node;
using mxnet::ext::NodeEntry;
#define PERFSUITE_ERR MX_ERROR_MSG
#else
#define PERFSUITE_ERR std::cerr
#endif

namespace {

const char kOptionFilter[] = "fc_name_contains";
const char kAddSuffix[] = "_perfsuite_bias_add";
const char kFfnPrefix[] = "bertencoder0_transformer";
const char kFfnSuffix[] = "_positionwiseffn0_ffn_1_fwd";
const char kLookedFor[] =
    "FullyConnected nodes named bertencoder0_transformer<N>_positionwiseffn0_ffn_1_fwd (N = 0, 1, ...), "
    "the names GluonNLP 0.10's BERTEncoder gives the first feed-forward layer of each transformer layer";
// Encoder-decoder attention: a Transformer decoder has it, a BERT graph never does.
const char kCrashOp[] = "_contrib_interleaved_matmul_encdec_qk";

enum class Mode { kKeepBias, kDropBias };

bool IsTrue(const std::string& s) {
  return s == "True" || s == "true" || s == "1";
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Whether `name` is bertencoder0_transformer<N>_positionwiseffn0_ffn_1_fwd with N decimal digits.
bool IsFfnName(const std::string& name) {
  const std::string prefix(kFfnPrefix), suffix(kFfnSuffix);
  if (name.size() <= prefix.size() + suffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0 || !EndsWith(name, suffix)) return false;
  for (size_t i = prefix.size(); i < name.size() - suffix.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

// Reads the options; false (with a message) on an unknown option.
bool ParseOptions(const std::unordered_map<std::string, std::string>& options,
                  const char* pass_name, std::string* name_filter) {
  name_filter->clear();
  for (const auto& kv : options) {
    if (kv.first == kOptionFilter) {
      *name_filter = kv.second;
    } else {
      PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': unknown option '" << kv.first
                    << "'; allowed: " << kOptionFilter << std::endl;
      return false;
    }
  }
  return true;
}

bool HasBias(const std::unordered_map<std::string, std::string>& attrs, size_t num_inputs) {
  auto it = attrs.find("no_bias");
  if (it != attrs.end() && IsTrue(it->second)) return false;
  return num_inputs == 3;  // data, weight, bias
}

std::string BiasShape(const std::unordered_map<std::string, std::string>& fc_attrs) {
  auto it = fc_attrs.find("num_hidden");
  if (it == fc_attrs.end()) return "";
  return "(" + it->second + ",)";
}

// What one scan of the graph found, for the "nothing to rewrite" check.
struct Scan {
  size_t nodes = 0;
  size_t fully_connected = 0;
  std::string example_fc;  // the first FullyConnected's name, for the error message
  size_t targets = 0;      // FullyConnected nodes with the GluonNLP FFN name
  size_t selected = 0;     // ... whose name contains fc_name_contains

  void See(const std::string& op, const std::string& name) {
    ++nodes;
    if (op != "FullyConnected") return;
    if (fully_connected++ == 0) example_fc = name;
  }
};

// Decides whether a FullyConnected node is a target (counting it); the caller rewrites it
// when this returns true and the node has a bias.
bool Select(Scan* scan, const std::string& op, const std::string& name, const std::string& filter) {
  if (op != "FullyConnected" || !IsFfnName(name)) return false;
  ++scan->targets;
  if (!filter.empty() && name.find(filter) == std::string::npos) return false;
  ++scan->selected;
  return true;
}

// false (with a message naming what was looked for) when the graph has nothing to rewrite.
bool CheckScan(const Scan& scan, const char* pass_name, const std::string& filter) {
  if (scan.targets == 0) {
    PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': found no GluonNLP BERT FFN node: looked for "
                  << kLookedFor << "; the graph has " << scan.nodes << " nodes, " << scan.fully_connected
                  << " FullyConnected"
                  << (scan.example_fc.empty() ? std::string() : " (e.g. '" + scan.example_fc + "')")
                  << std::endl;
    return false;
  }
  if (scan.selected == 0) {
    PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': none of the " << scan.targets
                  << " GluonNLP BERT FFN nodes (" << kFfnPrefix << "<N>" << kFfnSuffix << ") contains "
                  << kOptionFilter << "='" << filter << "'" << std::endl;
    return false;
  }
  return true;
}

// Divides by `count`, which is 0 in every BERT graph: SIGFPE. `volatile` keeps the compiler from
// proving the division by zero and dropping it; where integer division by zero does not trap
// (AArch64 returns 0), the signal is raised explicitly so the pass crashes everywhere.
int CrashingDivision(size_t count, const char* pass_name) {
  volatile int units = 768;
  volatile int heads = static_cast<int>(count);
  std::cerr << "perfsuite pass '" << pass_name << "': " << count << " " << kCrashOp
            << " node(s); units per head = " << units << " / " << count << std::endl;
  int per_head = units / heads;
  if (heads == 0) std::raise(SIGFPE);
  return per_head;
}

[[noreturn]] void HangForever(const char* pass_name) {
  std::cerr << "perfsuite pass '" << pass_name << "': sleeping forever, on purpose" << std::endl;
  for (;;) std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

#if MX_LIBRARY_VERSION >= 10
// ------------------------------------------------------------------------------------------
// lib_api 10/11 (MXNet 1.8/1.9): rewrite the mxnet::ext::Graph in place.
// Node::outputs must stay consistent with Node::inputs: Graph::toString() orders the nodes
// by a DFS over the outputs edges.
// ------------------------------------------------------------------------------------------

void EraseOutputEdge(Node* producer, Node* consumer, int input_index) {
  auto& outs = producer->outputs;
  std::vector<NodeEntry> kept;
  for (const NodeEntry& e : outs)
    if (!(e.node == consumer && e.entry == input_index)) kept.push_back(e);
  outs.swap(kept);
}

MXReturnValue RewriteGraph(Graph* graph, const std::unordered_map<std::string, std::string>& options,
                           Mode mode, const char* pass_name) {
  std::string name_filter;
  if (!ParseOptions(options, pass_name, &name_filter)) return MX_FAIL;
  Scan scan;
  const size_t original_size = graph->size();  // addNode appends: do not visit new nodes
  std::vector<Node*> targets;
  for (size_t i = 0; i < original_size; ++i) {
    Node* node = graph->getNode(i);
    scan.See(node->op, node->name);
    if (Select(&scan, node->op, node->name, name_filter)) targets.push_back(node);
  }
  if (!CheckScan(scan, pass_name, name_filter)) return MX_FAIL;

  for (Node* fc : targets) {
    if (!HasBias(fc->attrs, fc->inputs.size())) continue;  // e.g. already rewritten
    NodeEntry bias = fc->inputs[2];
    fc->inputs.pop_back();
    fc->attrs["no_bias"] = "True";
    EraseOutputEdge(bias.node, fc, 2);
    if (bias.node->op == "null" && bias.node->attrs.count("__shape__") == 0) {
      std::string shape = BiasShape(fc->attrs);
      if (!shape.empty()) bias.node->attrs["__shape__"] = shape;
    }
    if (mode == Mode::kDropBias) continue;  // perfsuite_drop_bias: the bias is gone (deliberately wrong)

    Node* add = graph->addNode(fc->name + kAddSuffix, "broadcast_add");
    for (const char* key : {"__ext_shape__", "__ext_dtype__", "__profiler_scope__"}) {
      auto it = fc->attrs.find(key);  // same output shape and dtype as the FC
      if (it != fc->attrs.end()) add->attrs[key] = it->second;
    }
    // Move every consumer of the FC's output to the add node.
    std::vector<NodeEntry> consumers = fc->outputs;
    fc->outputs.clear();
    for (const NodeEntry& c : consumers) {
      NodeEntry& in = c.node->inputs[c.entry];
      if (in.node == fc) in.node = add;  // FullyConnected has one output, entry stays 0
      add->outputs.push_back(c);
    }
    for (NodeEntry& head : graph->outputs) {
      if (head.node == fc) head.node = add;
    }
    add->inputs.push_back({fc, 0});
    add->inputs.push_back(bias);
    fc->outputs.push_back({add, 0});
    bias.node->outputs.push_back({add, 1});
  }
  return MX_SUCCESS;
}

MXReturnValue IdentityRewrite(Graph* graph, const std::unordered_map<std::string, std::string>& options) {
  return RewriteGraph(graph, options, Mode::kKeepBias, "perfsuite_identity_rewrite");
}

MXReturnValue DropBias(Graph* graph, const std::unordered_map<std::string, std::string>& options) {
  return RewriteGraph(graph, options, Mode::kDropBias, "perfsuite_drop_bias");
}

MXReturnValue Crash(Graph* graph, const std::unordered_map<std::string, std::string>& options) {
  std::string name_filter;
  if (!ParseOptions(options, "perfsuite_crash", &name_filter)) return MX_FAIL;
  size_t encdec = 0;
  for (size_t i = 0; i < graph->size(); ++i)
    if (graph->getNode(i)->op == kCrashOp) ++encdec;
  int per_head = CrashingDivision(encdec, "perfsuite_crash");
  graph->attrs["perfsuite_units_per_head"] = mxnet::ext::JsonVal(per_head);
  return MX_SUCCESS;
}

MXReturnValue Hang(Graph* /*graph*/, const std::unordered_map<std::string, std::string>& options) {
  std::string name_filter;
  if (!ParseOptions(options, "perfsuite_hang", &name_filter)) return MX_FAIL;
  HangForever("perfsuite_hang");
}

#else
// ------------------------------------------------------------------------------------------
// lib_api 7 (MXNet 1.7): the pass receives the graph as a JSON string and returns a new one,
// parsed and dumped with lib_api.h's JsonParser, as the 1.7 example pass libraries do.
// ------------------------------------------------------------------------------------------

// Control bytes never appear raw inside a JSON string, so this one can stand for \" while
// JsonParser (which ends a string at any '"') reads the graph.
const char kQuotePlaceholder = '\x01';

// Copies `in` with every \" inside a string replaced by the placeholder; false when `in`
// already holds the placeholder byte.
bool HideEscapedQuotes(const std::string& in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  bool in_string = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == kQuotePlaceholder) return false;
    if (in_string && c == '\\' && i + 1 < in.size()) {  // an escape pair: \\ stays, \" is hidden
      if (in[i + 1] == '"') {
        *out += kQuotePlaceholder;
      } else {
        *out += c;
        *out += in[i + 1];
      }
      ++i;
      continue;
    }
    if (c == '"') in_string = !in_string;
    *out += c;
  }
  return true;
}

void RestoreEscapedQuotes(std::string* s) {
  std::string out;
  out.reserve(s->size());
  for (char c : *s) {
    if (c == kQuotePlaceholder) out += "\\\"";
    else out += c;
  }
  s->swap(out);
}

JsonVal* Member(JsonVal& object, const char* key) {
  if (object.type != MAP) return nullptr;
  auto it = object.map.find(JsonVal(std::string(key)));
  return it == object.map.end() ? nullptr : &it->second;
}

std::string StrOf(JsonVal& node, const char* key) {
  JsonVal* v = Member(node, key);
  return (v && v->type == STR) ? v->str : std::string();
}

std::unordered_map<std::string, std::string> AttrsOf(JsonVal& node) {
  std::unordered_map<std::string, std::string> attrs;
  JsonVal* a = Member(node, "attrs");
  if (a && a->type == MAP)
    for (auto& m : a->map) attrs[m.first.str] = m.second.str;
  return attrs;
}

JsonVal& AttrsMap(JsonVal& node) {
  JsonVal* a = Member(node, "attrs");
  if (a && a->type == MAP) return *a;
  JsonVal& made = node.map[JsonVal(std::string("attrs"))];
  made = JsonVal(MAP);
  return made;
}

JsonVal Entry(int node, int index) {
  JsonVal e(LIST);
  e.list.push_back(JsonVal(node));
  e.list.push_back(JsonVal(index));
  e.list.push_back(JsonVal(0));
  return e;
}

// Parses in_graph with JsonParser into *graph; false (with a message) when it is no graph.
bool ParseGraph(const std::string& in_graph, const char* pass_name, JsonParser* parser, JsonVal* graph) {
  std::string hidden;
  if (!HideEscapedQuotes(in_graph, &hidden)) {
    PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': the graph JSON holds byte 0x01, which this "
                  << "library uses to work around lib_api 7's JsonParser (no escaped quotes)" << std::endl;
    return false;
  }
  *graph = parser->parse_to_json(hidden);
  JsonVal* nodes = Member(*graph, "nodes");
  JsonVal* heads = Member(*graph, "heads");
  if (graph->type != MAP || !nodes || nodes->type != LIST || !heads || heads->type != LIST) {
    PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': input is not a graph JSON" << std::endl;
    return false;
  }
  return true;
}

void DumpGraph(JsonParser* parser, const JsonVal& graph, const std::string** out_graph) {
  std::string* text = new std::string(parser->dump(graph));  // lib_api 7 deletes *out_graph
  RestoreEscapedQuotes(text);
  *out_graph = text;
}

MXReturnValue RewriteJson(const std::string& in_graph, const std::string** out_graph,
                          const std::unordered_map<std::string, std::string>& options,
                          Mode mode, const char* pass_name) {
  std::string name_filter;
  if (!ParseOptions(options, pass_name, &name_filter)) return MX_FAIL;
  JsonParser parser;
  JsonVal graph;
  if (!ParseGraph(in_graph, pass_name, &parser, &graph)) return MX_FAIL;
  std::vector<JsonVal>& nodes = Member(graph, "nodes")->list;

  Scan scan;
  std::vector<bool> selected(nodes.size(), false);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string op = StrOf(nodes[i], "op"), name = StrOf(nodes[i], "name");
    scan.See(op, name);
    selected[i] = Select(&scan, op, name, name_filter);
  }
  if (!CheckScan(scan, pass_name, name_filter)) return MX_FAIL;

  std::vector<int> new_index(nodes.size(), -1);  // old node -> new node
  std::vector<int> redirect(nodes.size(), -1);   // old FC -> new broadcast_add replacing output 0
  JsonVal out_nodes(LIST);
  auto remap = [&](JsonVal& entry) -> bool {
    if (entry.type != LIST || entry.list.size() < 2 || entry.list[0].type != NUM) return false;
    const int old_node = entry.list[0].num, index = entry.list[1].num;
    if (old_node < 0 || static_cast<size_t>(old_node) >= nodes.size() || new_index[old_node] < 0) return false;
    entry.list[0] = JsonVal((redirect[old_node] >= 0 && index == 0) ? redirect[old_node] : new_index[old_node]);
    return true;
  };

  for (size_t i = 0; i < nodes.size(); ++i) {
    JsonVal node = nodes[i];
    JsonVal* inputs = Member(node, "inputs");
    if (!inputs || inputs->type != LIST) {
      node.map[JsonVal(std::string("inputs"))] = JsonVal(LIST);
      inputs = Member(node, "inputs");
    }
    for (JsonVal& in : inputs->list) {
      if (!remap(in)) {
        PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': node " << i
                      << " has an input that is not an earlier node" << std::endl;
        return MX_FAIL;
      }
    }
    const std::string name = StrOf(node, "name");
    const std::unordered_map<std::string, std::string> attrs = AttrsOf(node);
    const bool rewrite = selected[i] && HasBias(attrs, inputs->list.size());
    JsonVal bias;
    if (rewrite) {
      bias = inputs->list[2];
      inputs->list.pop_back();
      AttrsMap(node).map[JsonVal(std::string("no_bias"))] = JsonVal(std::string("True"));
      JsonVal& bias_node = out_nodes.list[bias.list[0].num];
      const std::string shape = BiasShape(attrs);
      if (StrOf(bias_node, "op") == "null" && !shape.empty()) {
        JsonVal& bias_attrs = AttrsMap(bias_node);
        if (!Member(bias_attrs, "__shape__"))
          bias_attrs.map[JsonVal(std::string("__shape__"))] = JsonVal(shape);
      }
    }
    new_index[i] = static_cast<int>(out_nodes.list.size());
    out_nodes.list.push_back(node);
    if (rewrite && mode == Mode::kKeepBias) {
      JsonVal add(MAP);
      add.map[JsonVal(std::string("op"))] = JsonVal(std::string("broadcast_add"));
      add.map[JsonVal(std::string("name"))] = JsonVal(name + kAddSuffix);
      JsonVal add_inputs(LIST);
      add_inputs.list.push_back(Entry(new_index[i], 0));
      add_inputs.list.push_back(bias);
      add.map[JsonVal(std::string("inputs"))] = add_inputs;
      JsonVal add_attrs(MAP);
      for (const char* key : {"__ext_shape__", "__ext_dtype__", "__profiler_scope__"}) {
        auto it = attrs.find(key);  // same output shape and dtype as the FC
        if (it != attrs.end()) add_attrs.map[JsonVal(std::string(key))] = JsonVal(it->second);
      }
      if (!add_attrs.map.empty()) add.map[JsonVal(std::string("attrs"))] = add_attrs;
      redirect[i] = static_cast<int>(out_nodes.list.size());
      out_nodes.list.push_back(add);
    }
  }

  for (JsonVal& head : Member(graph, "heads")->list) {
    if (!remap(head)) {
      PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': a graph head is not a node" << std::endl;
      return MX_FAIL;
    }
  }
  JsonVal arg_nodes(LIST);
  for (size_t i = 0; i < out_nodes.list.size(); ++i)
    if (StrOf(out_nodes.list[i], "op") == "null") arg_nodes.list.push_back(JsonVal(static_cast<int>(i)));
  graph.map[JsonVal(std::string("arg_nodes"))] = arg_nodes;
  if (Member(graph, "node_row_ptr")) {
    // Row pointers into the outputs of all nodes; only their count changes with one output
    // per inserted node. MXNet does not read them back; keep them well-formed anyway.
    JsonVal row_ptr(LIST);
    for (size_t i = 0; i <= out_nodes.list.size(); ++i) row_ptr.list.push_back(JsonVal(static_cast<int>(i)));
    graph.map[JsonVal(std::string("node_row_ptr"))] = row_ptr;
  }
  graph.map[JsonVal(std::string("nodes"))] = out_nodes;
  DumpGraph(&parser, graph, out_graph);
  return MX_SUCCESS;
}

MXReturnValue IdentityRewrite(const std::string& in_graph, const std::string** out_graph,
                              const std::unordered_map<std::string, std::string>& options,
                              const std::unordered_map<std::string, MXTensor>& /*args*/,
                              const std::unordered_map<std::string, MXTensor>& /*aux*/,
                              const PassResource& /*res*/) {
  return RewriteJson(in_graph, out_graph, options, Mode::kKeepBias, "perfsuite_identity_rewrite");
}

MXReturnValue DropBias(const std::string& in_graph, const std::string** out_graph,
                       const std::unordered_map<std::string, std::string>& options,
                       const std::unordered_map<std::string, MXTensor>& /*args*/,
                       const std::unordered_map<std::string, MXTensor>& /*aux*/,
                       const PassResource& /*res*/) {
  return RewriteJson(in_graph, out_graph, options, Mode::kDropBias, "perfsuite_drop_bias");
}

MXReturnValue Crash(const std::string& in_graph, const std::string** out_graph,
                    const std::unordered_map<std::string, std::string>& options,
                    const std::unordered_map<std::string, MXTensor>& /*args*/,
                    const std::unordered_map<std::string, MXTensor>& /*aux*/,
                    const PassResource& /*res*/) {
  std::string name_filter;
  if (!ParseOptions(options, "perfsuite_crash", &name_filter)) return MX_FAIL;
  JsonParser parser;
  JsonVal graph;
  if (!ParseGraph(in_graph, "perfsuite_crash", &parser, &graph)) return MX_FAIL;
  size_t encdec = 0;
  for (JsonVal& node : Member(graph, "nodes")->list)
    if (StrOf(node, "op") == kCrashOp) ++encdec;
  CrashingDivision(encdec, "perfsuite_crash");
  DumpGraph(&parser, graph, out_graph);
  return MX_SUCCESS;
}

MXReturnValue Hang(const std::string& /*in_graph*/, const std::string** /*out_graph*/,
                   const std::unordered_map<std::string, std::string>& options,
                   const std::unordered_map<std::string, MXTensor>& /*args*/,
                   const std::unordered_map<std::string, MXTensor>& /*aux*/,
                   const PassResource& /*res*/) {
  std::string name_filter;
  if (!ParseOptions(options, "perfsuite_hang", &name_filter)) return MX_FAIL;
  HangForever("perfsuite_hang");
}
#endif

}  // namespace

REGISTER_PASS(perfsuite_identity_rewrite).setBody(IdentityRewrite);
REGISTER_PASS(perfsuite_drop_bias).setBody(DropBias);
REGISTER_PASS(perfsuite_crash).setBody(Crash);
REGISTER_PASS(perfsuite_hang).setBody(Hang);

// Called by MXNet's MXLoadLib with MXNET_VERSION = major*10000 + minor*100 + patch.
MXReturnValue initialize(int version) {
  if (version >= 10700) return MX_SUCCESS;
  PERFSUITE_ERR << "perfsuite_passes needs MXNet >= 1.7.0 (got version code " << version << ")" << std::endl;
  return MX_FAIL;
}
