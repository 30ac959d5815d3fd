% rebase('base.tpl', page='missing', scripts=[])
<section class="card narrow">
  <h1>No such job</h1>
  <p>There is no job with the id <code>{{job_id}}</code>. It may have been deleted.</p>
  <p><a href="/">Back to the job list</a></p>
</section>
