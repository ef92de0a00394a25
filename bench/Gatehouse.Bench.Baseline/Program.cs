// The framework's own ceiling on this machine: the same host settings as Gatehouse, a fixed small JSON
// answer, no work. Every Gatehouse figure in bench/ is quoted as a ratio to this, measured in the same run.
var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var app = builder.Build();
app.MapGet("/baseline", () => TypedResults.Json(new Answer(true, "baseline"), BaselineJson.Default.Answer));
app.Run();

internal sealed record Answer(bool Ok, string Name);

[System.Text.Json.Serialization.JsonSerializable(typeof(Answer))]
internal sealed partial class BaselineJson : System.Text.Json.Serialization.JsonSerializerContext;
