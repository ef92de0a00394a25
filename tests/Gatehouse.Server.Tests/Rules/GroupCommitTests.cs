using Gatehouse.Server.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Rules;

/// <summary>
/// The group-commit writer on a database of its own (a SQLite file): what it promises any change, whatever the change.
/// The session rules' grouping on a real server is GroupCommitTests (per provider).
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class GroupCommitWriterTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"gatehouse-group-{Guid.NewGuid():n}.db");
    private readonly List<int> _groups = [];
    private TaskCompletionSource? _holdFirstGroup;

    private sealed class Note
    {
        public int Id { get; set; }
        public required string Text { get; set; }
    }

    private sealed class Notes(DbContextOptions<Notes> options) : DbContext(options)
    {
        public DbSet<Note> Items => Set<Note>();
    }

    private sealed class NotesFactory(string path) : IDbContextFactory<Notes>
    {
        public Notes CreateDbContext() => new(new DbContextOptionsBuilder<Notes>().UseSqlite($"Data Source={path};Pooling=false").Options);
    }

    private sealed class AddNote(string text, CancellationToken ct = default) : GroupWork<int>(ct)
    {
        public string Text { get; } = text;
    }

    public async Task InitializeAsync()
    {
        await using var db = new NotesFactory(_path).CreateDbContext();
        await db.Database.EnsureCreatedAsync();
    }

    public Task DisposeAsync()
    {
        File.Delete(_path);
        return Task.CompletedTask;
    }

    private GroupCommit<Notes> Writer() => new(new NotesFactory(_path), () => 100, async (db, group) =>
    {
        if (_holdFirstGroup is { } hold)
        {
            _holdFirstGroup = null;
            await hold.Task;
        }
        // A result the group decides and then takes back by failing; alone, that change decides nothing.
        foreach (var work in group.OfType<AddNote>().Where(w => w.Text == "decided in the group only" && group.Count > 1))
            work.Result = -1;
        if (group.Count > 1 && group.OfType<AddNote>().Any(w => w.Text == "poison"))
            throw new InvalidOperationException("a change that cannot be written");
        foreach (var work in group.OfType<AddNote>())
        {
            if (work.Text == "poison")
                throw new InvalidOperationException("a change that cannot be written");
            if (work.Text == "decided in the group only")
                continue;
            var note = new Note { Text = work.Text };
            db.Add(note);
            await db.SaveChangesAsync();
            work.Result = note.Id;
        }
    }, _groups.Add);

    /// <summary>A running writer whose first group (the note "first" alone) is held in its transaction until <c>Hold</c> is set.</summary>
    private async Task<(GroupCommit<Notes> Writer, Task Running, Task<int> First, TaskCompletionSource Hold)> HoldingTheFirstGroupAsync()
    {
        var writer = Writer();
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _holdFirstGroup = hold;
        var running = writer.RunAsync();
        var first = writer.SubmitAsync(new AddNote("first"));
        while (_holdFirstGroup is not null)
            await Task.Delay(5);
        return (writer, running, first, hold);
    }

    private async Task<List<string>> StoredAsync()
    {
        await using var db = new NotesFactory(_path).CreateDbContext();
        return await db.Items.OrderBy(n => n.Id).Select(n => n.Text).ToListAsync();
    }

    [Fact]
    public async Task Changes_arriving_during_a_commit_share_the_next_one_and_none_is_answered_before_its_group_is_committed()
    {
        var (writer, running, first, hold) = await HoldingTheFirstGroupAsync();
        var later = Enumerable.Range(0, 20).Select(i => writer.SubmitAsync(new AddNote($"later-{i}"))).ToList();
        await Task.Delay(100);
        Assert.False(first.IsCompleted, "answered before its commit");
        Assert.DoesNotContain(later, t => t.IsCompleted);

        hold.SetResult();
        var ids = await Task.WhenAll(later.Prepend(first));
        writer.Complete();
        await running;

        Assert.Equal([1, 20], _groups);
        Assert.Equal(21, ids.Distinct().Count());
        Assert.Equal(21, (await StoredAsync()).Count);
    }

    [Fact]
    public async Task A_change_that_fails_its_group_is_retried_alone_and_fails_alone()
    {
        var (writer, running, first, hold) = await HoldingTheFirstGroupAsync();
        var good = writer.SubmitAsync(new AddNote("good"));
        var poison = writer.SubmitAsync(new AddNote("poison"));
        var alsoGood = writer.SubmitAsync(new AddNote("also good"));
        hold.SetResult();

        await first;
        await good;
        await alsoGood;
        await Assert.ThrowsAsync<InvalidOperationException>(() => poison);
        writer.Complete();
        await running;
        Assert.Equal(["first", "good", "also good"], await StoredAsync());
    }

    [Fact]
    public async Task A_change_written_again_alone_never_reports_what_its_failed_group_decided()
    {
        var (writer, running, first, hold) = await HoldingTheFirstGroupAsync();
        var undecided = writer.SubmitAsync(new AddNote("decided in the group only"));
        var poison = writer.SubmitAsync(new AddNote("poison"));
        hold.SetResult();

        await first;
        await Assert.ThrowsAsync<InvalidOperationException>(() => poison);
        Assert.Equal(0, await undecided);
        writer.Complete();
        await running;
        Assert.Equal(["first"], await StoredAsync());
    }

    [Fact]
    public async Task A_change_whose_request_went_away_before_its_group_is_not_written()
    {
        var writer = Writer();
        using var gone = new CancellationTokenSource();
        await gone.CancelAsync();

        var abandoned = writer.SubmitAsync(new AddNote("abandoned", gone.Token));
        var running = writer.RunAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        await writer.SubmitAsync(new AddNote("kept"));
        writer.Complete();
        await running;

        Assert.Equal(["kept"], await StoredAsync());
    }

    [Fact]
    public async Task Once_the_writer_stops_a_change_is_written_as_a_group_of_its_own()
    {
        var writer = Writer();
        var running = writer.RunAsync();
        writer.Complete();
        await running;

        Assert.True(await writer.SubmitAsync(new AddNote("after stop")) > 0);
        Assert.Equal(["after stop"], await StoredAsync());
    }
}
