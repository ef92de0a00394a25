using Gatehouse.Samples.ConsoleApp;

if (args.Length != 5)
{
    Console.Error.WriteLine("Usage: dotnet run --project samples/ConsoleApp -- <backend url> <gatehouse url> <api key> <username> <password>");
    return 2;
}
return await LoginSample.RunAsync(new Uri(args[0]), new Uri(args[1]), args[2], args[3], args[4], Console.Out);
