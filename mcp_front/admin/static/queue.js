// The live approval queue: polls the REST API and renders rows with textContent only.
(function(){
  const body = document.getElementById('queue');
  const csrf = body.dataset.csrf;
  function cell(text){ const td=document.createElement('td'); td.textContent=text; return td; }
  function button(label, cls, onClick){ const b=document.createElement('button'); b.textContent=label;
    b.className='btn '+cls; b.addEventListener('click', onClick); return b; }
  async function decide(id, approve){
    let url='/api/v1/approvals/'+encodeURIComponent(id)+(approve?'/approve':'/deny'); let opts={method:'POST',
      headers:{'X-CSRF-Token':csrf,'Content-Type':'application/json'}};
    if(!approve){ const reason=prompt('Reason for denial'); if(!reason) return; opts.body=JSON.stringify({reason}); }
    const r=await fetch(url,opts); if(!r.ok){ alert('Failed: '+r.status); } refresh();
  }
  async function refresh(){
    const r=await fetch('/api/v1/approvals?status=pending'); if(!r.ok) return;
    const data=await r.json(); body.replaceChildren();
    for(const a of (data.approvals||[])){
      const tr=document.createElement('tr'); tr.dataset.id=a.id;
      const link=document.createElement('a'); link.href='/console/approvals/'+encodeURIComponent(a.id);
      link.textContent=a.tool; const tool=document.createElement('td'); tool.appendChild(link); tr.appendChild(tool);
      tr.appendChild(cell(a.toolkit_org_slug+'/'+a.toolkit_slug)); tr.appendChild(cell(a.arguments_json||''));
      tr.appendChild(cell((a.requester||{}).display||'')); tr.appendChild(cell(a.created_at||''));
      const act=document.createElement('td'); act.appendChild(button('Approve','ok',()=>decide(a.id,true)));
      act.appendChild(document.createTextNode(' ')); act.appendChild(button('Deny','no',()=>decide(a.id,false)));
      tr.appendChild(act); body.appendChild(tr);
    }
    document.getElementById('count').textContent=(data.approvals||[]).length;
  }
  setInterval(refresh, 2000);
})();
