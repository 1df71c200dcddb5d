const body = document.getElementById('running-body');
const note = document.getElementById('live');
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text;
  if (cls) td.className = cls; return td; }
function render(rows) {
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr'); tr.dataset.maintenance = r.id;
    const a = document.createElement('a'); a.href = '/addons/' + encodeURIComponent(r.addon);
    a.textContent = r.addon; const th = document.createElement('th'); th.appendChild(a); tr.appendChild(th);
    tr.appendChild(cell(r.app)); tr.appendChild(cell(r.status, 'status')); tr.appendChild(cell(r.step, 'step'));
    tr.appendChild(cell(r.lag, 'lag')); tr.appendChild(cell(r.elapsed, 'elapsed'));
    tr.appendChild(cell(r.note, 'note')); body.appendChild(tr);
  }
  if (!rows.length) { const tr = document.createElement('tr'); const td = cell('Nothing running.', 'muted');
    td.colSpan = 7; tr.appendChild(td); body.appendChild(tr); }
}
const source = new EventSource('/running/events');
source.onmessage = (ev) => { const data = JSON.parse(ev.data); render(data.running);
  note.textContent = 'live · updated ' + data.at; };
source.onerror = () => { note.textContent = 'reconnecting…'; };
