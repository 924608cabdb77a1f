// The live approval queue: server-sent events from /console/approvals/events. Rows are built
// with textContent only (payload text never becomes markup) and carry the same forms as the
// server-rendered ones: approve, and deny with its inline reason field.
(function(){
  const body = document.getElementById('queue');
  const csrf = body.dataset.csrf;
  const empty = document.getElementById('empty');
  function el(tag, attrs, text){ const e=document.createElement(tag);
    for(const k in attrs){ e.setAttribute(k, attrs[k]); } if(text!==undefined){ e.textContent=text; } return e; }
  function cell(label, child){ const td=el('td',{'data-label':label});
    if(typeof child==='string'){ td.textContent=child; } else { td.appendChild(child); } return td; }
  function form(id, action, tool){
    const f=el('form',{method:'post',action:'/console/approvals/'+encodeURIComponent(id)+'/decide',class:'inline'});
    f.appendChild(el('input',{type:'hidden',name:'csrf',value:csrf}));
    f.appendChild(el('input',{type:'hidden',name:'action',value:action}));
    f.appendChild(el('input',{type:'hidden',name:'back',value:'queue'}));
    f.appendChild(el('input',{type:'hidden',name:'org',value:body.dataset.org||''}));
    if(action==='deny'){ f.appendChild(el('input',{name:'reason',placeholder:'Reason (required)',required:'',
      'aria-label':'Reason for denying '+tool})); }
    f.appendChild(el('button',{class:'btn '+(action==='approve'?'ok':'no')}, action==='approve'?'Approve':'Deny'));
    return f;
  }
  function row(a){
    const tr=el('tr',{'data-id':a.id});
    tr.appendChild(cell('Tool', el('a',{href:'/console/approvals/'+encodeURIComponent(a.id)}, a.tool)));
    tr.appendChild(cell('Toolkit', a.toolkit)); tr.appendChild(cell('Arguments', el('code',{}, a.arguments)));
    tr.appendChild(cell('Requested by', a.requested_by));
    tr.appendChild(cell('Requested', el('time',{datetime:a.created_at}, a.created_text)));
    const act=el('td',{'data-label':'Decision'}); act.appendChild(form(a.id,'approve',a.tool));
    act.appendChild(document.createTextNode(' ')); act.appendChild(form(a.id,'deny',a.tool)); tr.appendChild(act);
    return tr;
  }
  function update(){ const n=body.querySelectorAll('tr[data-id]').length;
    document.getElementById('count').textContent=n; empty.hidden=n>0; }
  const org=body.dataset.org;
  const events=new EventSource('/console/approvals/events'+(org?'?org='+encodeURIComponent(org):''));
  events.addEventListener('message', function(m){
    const a=JSON.parse(m.data);
    const existing=body.querySelector('tr[data-id="'+CSS.escape(a.id)+'"]');
    if(a.status==='pending'){ if(!existing){ body.insertBefore(row(a), body.firstChild); } }
    else if(existing){ existing.remove(); }
    update();
  });
})();
