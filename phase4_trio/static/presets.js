// The Presets panel: save the view under a name, load or delete one. Stored in localStorage
// through state.js, which validates every value of a preset as it would a URL parameter.

import { applyPreset, defaults, loadPresets, presetOf, savePresets } from "./state.js";

const $ = (id) => document.getElementById(id);

export class PresetPanel {
  /** @param state the live view state; @param setState(patch) changes it */
  constructor(state, setState) {
    this.state = state;
    this.setState = setState;
  }

  wire() {
    $("presetSave").addEventListener("click", () => this.save($("presetName").value));
    $("presetName").addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.save($("presetName").value);
    });
    $("presetLoad").addEventListener("click", () => this.load($("presetList").value));
    $("presetDelete").addEventListener("click", () => this.remove($("presetList").value));
    $("presetList").addEventListener("change", () => {
      $("presetName").value = $("presetList").value;
      this.renderButtons();
    });
    $("presetList").addEventListener("dblclick", () => this.load($("presetList").value));
  }

  render(selected) {
    const list = $("presetList");
    list.replaceChildren();
    for (const name of Object.keys(loadPresets()).sort()) {
      const o = document.createElement("option");
      o.value = o.textContent = name;
      if (name === selected) o.selected = true;
      list.appendChild(o);
    }
    $("presetEmpty").hidden = list.options.length > 0;
    this.renderButtons();
  }

  renderButtons() {
    const has = Boolean($("presetList").value);
    $("presetLoad").disabled = !has;
    $("presetDelete").disabled = !has;
  }

  save(name) {
    name = (name || "").trim();
    if (!name) {
      $("presetName").focus();
      $("presetName").classList.add("invalid");
      return;
    }
    $("presetName").classList.remove("invalid");
    const presets = loadPresets();
    presets[name] = presetOf(this.state);
    savePresets(presets);
    this.render(name);
  }

  load(name) {
    const p = loadPresets()[name];
    if (!p) return;
    const s = applyPreset(defaults(), p);
    const patch = {};
    for (const k of Object.keys(p)) if (k in s && k !== "server" && k !== "fps") patch[k] = s[k];
    this.setState(patch);
    this.render(name);
  }

  remove(name) {
    const presets = loadPresets();
    if (!(name in presets)) return;
    delete presets[name];
    savePresets(presets);
    this.render();
    $("presetName").value = "";
  }
}
