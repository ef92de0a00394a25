using Gatehouse.Server;
using Gatehouse.Server.Operations;
using Gatehouse.Server.Storage;
using Microsoft.Extensions.Options;

if (OperatorCommands.IsCommand(args))
    return await OperatorCommands.RunAsync(args, Console.Out, Console.Error);

try
{
    var app = GatehouseApp.Build(args);
    await GatehouseApp.InitializeAsync(app, Console.Out);
    await app.RunAsync();
    return 0;
}
catch (OptionsValidationException e)
{
    await Console.Error.WriteLineAsync("Gatehouse cannot start: the configuration is invalid.");
    foreach (var failure in e.Failures)
        await Console.Error.WriteLineAsync($"  {failure}");
    return 2;
}
catch (StorageTooNewException e)
{
    await Console.Error.WriteLineAsync($"Gatehouse cannot start: {e.Message}");
    return 3;
}
