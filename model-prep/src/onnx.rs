//! Weights from an ONNX export of a BERT encoder, through tract. tract-onnx parses and types the
//! graph; tract's own ops fold its constant subgraphs (`EvalOp::eval_out_of_plan`), which
//! dequantizes an int8-weight export's `Cast → Mul(scale)` chains. The typed graph is read before
//! decluttering, because declutter renames constants after their consumers.
//!
//! Weights are found by their place in the graph. HF exports keep checkpoint names on the
//! embeddings, LayerNorm parameters and biases, while MatMul weights are anonymous (transposed
//! during export): a linear layer is a matmul with a constant operand whose result feeds an
//! `Add` of a constant named `*.bias` (possibly through broadcasting ops), and takes that bias's
//! name. This is the only module that names tract types.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context, Result};
use tract_onnx::prelude::*;

use crate::source::{checkpoint_name, Array};

/// Ops a typed BERT encoder graph is made of; anything else is refused by name.
const BERT_OPS: &[&str] = &[
    "Source", "Const", "EinSum", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Rsqrt", "Recip", "Erf", "Exp", "Max",
    "Min", "Softmax", "AddAxis", "RmAxis", "Reshape", "MoveAxis", "Cast", "Gather", "GatherNd", "Slice",
    "StridedSlice", "Concat", "Stack", "Range", "Iff", "IsNan", "Eq", "Less", "LTE", "GTE", "Greater", "Equals", "And",
    "Or", "Not", "Square", "Tanh", "Neg", "Abs", "MultiBroadcastTo", "Shape", "LayerNorm", "RmsNorm",
];

fn supported(op: &str) -> bool {
    BERT_OPS.contains(&op) || op.starts_with("Reduce<")
}

fn to_array(t: &Tensor) -> Result<Array> {
    let t = t.cast_to::<f32>()?;
    let view = t.to_plain_array_view::<f32>()?;
    Ok(Array { shape: t.shape().to_vec(), data: view.iter().copied().collect() })
}

/// The checkpoint parameter a node name refers to: the module path up to `.weight`/`.bias`,
/// when what follows is an exporter's suffix (`_mul`, `_cast`, `.0`), not another word
/// (`weight_scale`, `weight_q` are parts, not the parameter).
fn param_name(node: &str) -> Option<String> {
    let name = checkpoint_name(node);
    for marker in [".weight", ".bias"] {
        if let Some(at) = name.find(marker) {
            let rest = &name[at + marker.len()..];
            if matches!(rest, "" | ".0" | "_mul" | "_mul.0") {
                return Some(name[..at + marker.len()].to_owned());
            }
        }
    }
    None
}

/// Reads every BERT parameter of an ONNX file (see `read_graph`).
pub fn read_onnx(bytes: &[u8]) -> Result<BTreeMap<String, Array>> {
    let model = tract_onnx::onnx().model_for_read(&mut &*bytes).context("tract-onnx cannot parse the ONNX file")?;
    read_graph(model)
}

/// Reads every BERT parameter of a graph into checkpoint-named, torch-layout arrays (`[out, in]`
/// for linear weights), as `model.safetensors` names and lays them out.
pub fn read_graph(model: InferenceModel) -> Result<BTreeMap<String, Array>> {
    let model = model.into_typed().context("tract cannot type the ONNX graph")?;
    let order = model.eval_order()?;
    // Constant values, and the named parameter each one carries (through casts and broadcasts).
    let mut values: HashMap<OutletId, Arc<Tensor>> = HashMap::new();
    let mut origin: HashMap<OutletId, String> = HashMap::new();
    let mut tensors = BTreeMap::new();
    for &id in &order {
        let node = model.node(id);
        let op = node.op.name();
        if !supported(&op) {
            bail!("unsupported op {op} at node {:?}: not part of a BERT encoder graph", node.name);
        }
        let out = OutletId::new(id, 0);
        if let Some(k) = &model.outlet_fact(out)?.konst {
            values.insert(out, k.clone());
        } else if !node.inputs.is_empty() && node.inputs.iter().all(|i| values.contains_key(i)) {
            let inputs = node.inputs.iter().map(|i| values[i].clone().into_tvalue()).collect();
            // Nodes that depend on a symbol (the sequence length) do not fold: not constants.
            if let Ok(Some(outs)) = node.op.eval_out_of_plan(inputs) {
                values.insert(out, outs[0].clone().into_arc_tensor());
            }
        }
        let own = param_name(&node.name);
        if let (Some(name), Some(v)) = (&own, values.get(&out)) {
            // The last float value of a name's chain wins: q (int8) → cast → scaled.
            if v.datum_type().is_float() {
                tensors.insert(name.clone(), to_array(v)?);
            }
        }
        let inherited = own.or_else(|| {
            let mut named = node.inputs.iter().filter_map(|i| origin.get(i));
            let first = named.next()?;
            named.next().is_none().then(|| first.clone())
        });
        if let Some(name) = inherited.filter(|_| values.contains_key(&out)) {
            origin.insert(out, name);
        }
    }
    // Linear layers: matmul(x, const W) → Add(·, const named *.bias).
    let mut linears = 0;
    for &id in &order {
        let node = model.node(id);
        if node.op.name() != "EinSum" {
            continue;
        }
        let Some(w) = node.inputs.iter().filter_map(|i| values.get(i)).find(|t| t.rank() >= 2) else { continue };
        let bias = node.outputs[0].successors.iter().find_map(|inlet| {
            let add = model.node(inlet.node);
            (add.op.name() == "Add").then_some(())?;
            add.inputs.iter().filter_map(|i| origin.get(i)).find(|n| n.ends_with(".bias")).cloned()
        });
        let Some(bias) = bias else { continue };
        let out = tensors.get(&bias).map(|b| b.data.len()).context("bias without a value")?;
        let mut w = to_array(w)?;
        let (rows, cols) = (w.data.len() / w.shape[w.shape.len() - 1], w.shape[w.shape.len() - 1]);
        w.shape = vec![rows, cols];
        // ONNX MatMul(x, W) multiplies by W as [in, out]; torch stores [out, in].
        if cols != out {
            bail!("the weight feeding {bias} is {rows}×{cols}, which does not produce {out} outputs");
        }
        tensors.insert(bias.replace(".bias", ".weight"), w.transposed());
        linears += 1;
    }
    if !tensors.contains_key("embeddings.word_embeddings.weight") || linears == 0 {
        bail!("no word embedding table or no linear layers found: the ONNX graph does not look like a BERT export");
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_from_exporter_node_names() {
        assert_eq!(param_name("inner.encoder.layer.0.attention.self.query.bias.0").as_deref(), Some("encoder.layer.0.attention.self.query.bias"));
        assert_eq!(param_name("inner.embeddings.word_embeddings.weight_mul").as_deref(), Some("embeddings.word_embeddings.weight"));
        assert_eq!(param_name("bert.embeddings.LayerNorm.weight").as_deref(), Some("embeddings.LayerNorm.weight"));
        assert_eq!(param_name("inner.embeddings.word_embeddings.weight_scale.0"), None);
        assert_eq!(param_name("inner.embeddings.word_embeddings.weight_q.0"), None);
        assert_eq!(param_name("node_linear"), None);
    }
}
